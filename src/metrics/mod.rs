//! Counters and gauges of the pipeline, and the port they are published through.
