//! The status every export returns: fixed values, and the one mapping from
//! the crate's error type to them.

use crate::error::Error;

/// Status of every call. Values are fixed by the ABI contract: add, never renumber.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FashopNotifyStatus {
    FASHOP_NOTIFY_OK = 0,
    FASHOP_NOTIFY_INVALID_ARGUMENT = 1,
    FASHOP_NOTIFY_APP_NOT_CONFIGURED = 2,
    FASHOP_NOTIFY_MAPPING_ERROR = 3,
    FASHOP_NOTIFY_NO_PERMIT = 4,
    FASHOP_NOTIFY_WECHAT_ERROR = 5,
    FASHOP_NOTIFY_NETWORK_ERROR = 6,
    FASHOP_NOTIFY_UNCERTAIN = 7,
    FASHOP_NOTIFY_STORE_ERROR = 8,
    FASHOP_NOTIFY_INTERNAL = 9,
}

use FashopNotifyStatus::*;

impl From<&Error> for FashopNotifyStatus {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidArgument(_) => FASHOP_NOTIFY_INVALID_ARGUMENT,
            Error::AppNotConfigured(_) => FASHOP_NOTIFY_APP_NOT_CONFIGURED,
            Error::Mapping(_) => FASHOP_NOTIFY_MAPPING_ERROR,
            Error::NoPermit(_) => FASHOP_NOTIFY_NO_PERMIT,
            Error::WeChat { .. } => FASHOP_NOTIFY_WECHAT_ERROR,
            Error::Network(_) => FASHOP_NOTIFY_NETWORK_ERROR,
            Error::Uncertain(_) => FASHOP_NOTIFY_UNCERTAIN,
            Error::Store(_) => FASHOP_NOTIFY_STORE_ERROR,
            Error::Internal(_) => FASHOP_NOTIFY_INTERNAL,
        }
    }
}
