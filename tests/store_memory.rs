//! The shared store suite against the in-process store.

mod store_suite;

use store_suite::Fixture;

fn fresh() -> Fixture {
    Fixture::new("memory", Box::new(()))
}

store_suite!(fresh);
