//! The pipeline stages as actix actors.
