//! Leave requests.
