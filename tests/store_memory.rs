//! The shared store suite against the in-process store.

use crate::store_suite::Fixture;

fn fresh() -> Fixture {
    Fixture::new("memory", Box::new(()))
}

crate::store_suite!(fresh);
