//! End-to-end tests: real pipelines, real plugins built from `plugins/`,
//! against the embedded broker and a real Apache Kafka broker.

mod aggregations;
mod bad_input;
mod broker_faults;
mod containment;
mod crash;
mod dead_letters;
mod dev;
mod exactly_once;
mod guest_toolchains;
mod hostile;
mod hot_swap;
mod joins;
mod languages;
mod large_orders;
mod rebalance;
mod refused_records;
mod repartition;
mod security;
mod serve;
mod state_restore;
mod stock_stats;
mod support;
mod tables_and_state;
mod time;
mod windows;
