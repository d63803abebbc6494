//! Hortator service proxy.
