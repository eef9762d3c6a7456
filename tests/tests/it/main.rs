//! One test binary for every integration test, so the AWS SDK and librdkafka are linked
//! once and moto and tansu are started once per run.

mod abuse;
mod archive_source;
mod auth;
mod browser;
mod conversations;
mod deploy;
mod fan_out;
mod faults;
mod files;
mod files_store;
mod gateway;
mod handlers;
mod history;
mod history_store;
mod http_api;
mod http_conversations;
mod kafka_secret;
mod local_surfaces;
mod nicknames;
mod no_scan;
mod openapi;
mod page;
mod publisher;
mod quotas;
mod roots;
mod shutdown;
mod signatures;
mod signed_in;
mod source;
mod store;
mod users;
