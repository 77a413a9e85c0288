//! The request and response bodies of eddy's admin API (`/_eddy/v1/…`), as types the server
//! and the command line share: a field renamed on one side is renamed on the other, and the
//! compiler says where.

pub mod admin;
