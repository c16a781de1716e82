//! Loading the settings: the layers (defaults, a file, the environment), and the rules of
//! `validate.rs` refusing what they should, each refusal named as the user writes the setting.

// `figment::Jail`'s error type is what it is.
#![allow(clippy::result_large_err)]

use std::path::Path;
use std::time::Duration;

use super::*;

#[test]
fn lake_prefix_is_a_folder() {
    for (set, loaded) in [
        ("", ""),
        ("data", "data/"),
        ("data/", "data/"),
        ("a/b", "a/b/"),
    ] {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KINETICK_LAKE__PREFIX", set);
            assert_eq!(Config::load(None).unwrap().lake.prefix, loaded);
            Ok(())
        });
    }
}

#[test]
fn file_and_env_override_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "kinetick.toml",
            r#"
            [checkpoint]
            interval = "5s"
            [rules.default]
            change-percent = 3.0
            [rules.symbols.AAPL]
            price-above = 412.75
            "#,
        )?;
        jail.set_env("KINETICK_CHECKPOINT__MAX_RECORDS", "1000");
        jail.set_env("KINETICK_METRICS__NAMESPACE", "Desk");
        jail.set_env("KINETICK_TABLE__MODE", "both");
        let config = Config::load(Some(Path::new("kinetick.toml"))).unwrap();
        assert_eq!(config.checkpoint.interval, Duration::from_secs(5));
        assert_eq!(config.checkpoint.max_records, 1000);
        assert_eq!(config.metrics.namespace, "Desk");
        assert_eq!(config.rules.default.change_percent, Some(3.0));
        assert_eq!(config.rules.for_symbol("AAPL").price_above, Some(412.75));
        assert_eq!(config.table.mode, TableMode::Both);
        Ok(())
    });
}

#[test]
fn kafka_sasl_mechanisms_read_as_kafka_names_them() {
    for (written, mechanism) in [
        ("none", SaslMechanism::None),
        ("plain", SaslMechanism::Plain),
        ("scram-sha-256", SaslMechanism::ScramSha256),
        ("scram-sha-512", SaslMechanism::ScramSha512),
        ("aws-msk-iam", SaslMechanism::AwsMskIam),
    ] {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KINETICK_KAFKA__SASL_MECHANISM", written);
            assert_eq!(Config::load(None).unwrap().kafka.sasl_mechanism, mechanism);
            Ok(())
        });
    }
}

#[test]
fn unknown_settings_are_rejected() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("kinetick.toml", "[checkpoint]\nintervall = \"5s\"\n")?;
        let error = Config::load(Some(Path::new("kinetick.toml"))).unwrap_err();
        assert!(error.to_string().contains("intervall"), "{error}");
        Ok(())
    });
}

/// What `Config::load` refuses with these `KINETICK_...` variables and this file, one line
/// per refusal (none: it loads).
fn refusals_of(file: &str, env: &[(&str, &str)]) -> Vec<String> {
    let mut refusals = Vec::new();
    figment::Jail::expect_with(|jail| {
        jail.create_file("kinetick.toml", file)?;
        for (name, value) in env {
            jail.set_env(name, value);
        }
        match Config::load(Some(Path::new("kinetick.toml"))) {
            Ok(_) => {}
            Err(ConfigError::Invalid(errors)) => {
                refusals = errors.iter().map(ToString::to_string).collect();
            }
            Err(error) => panic!("not a refusal of a rule: {error}"),
        }
        Ok(())
    });
    refusals
}

fn refusals(env: &[(&str, &str)]) -> Vec<String> {
    refusals_of("", env)
}

#[test]
fn the_defaults_keep_every_rule() {
    assert_eq!(Config::default().validate(), Ok(()));
    assert_eq!(refusals(&[]), Vec::<String>::new());
}

#[test]
fn failover_time_must_exceed_renew_and_poll_intervals() {
    assert_eq!(
        refusals(&[
            ("KINETICK_LEASE__FAILOVER_TIME", "3s"),
            ("KINETICK_LEASE__RENEW_INTERVAL", "2100ms"),
        ]),
        [
            "invalid setting lease.failover-time = 3s: must be above lease.renew-interval + \
          lease.poll-interval (2.1s + 1s)"
        ]
    );
    // Without a renew interval of its own, a third of the failover time.
    assert_eq!(
        refusals(&[
            ("KINETICK_LEASE__FAILOVER_TIME", "1500ms"),
            ("KINETICK_AWS__TIMEOUTS__LEASES__ATTEMPT", "500ms"),
            ("KINETICK_AWS__TIMEOUTS__LEASES__OPERATION", "1s"),
        ]),
        [
            "invalid setting lease.failover-time = 1.5s: must be above lease.renew-interval + \
          lease.poll-interval (500ms + 1s); lease.renew-interval is a third of \
          lease.failover-time unless set"
        ]
    );
    // The settings the lease tests run with.
    assert_eq!(
        refusals(&[
            ("KINETICK_LEASE__FAILOVER_TIME", "3s"),
            ("KINETICK_LEASE__POLL_INTERVAL", "500ms"),
        ]),
        Vec::<String>::new()
    );
}

#[test]
fn every_refusal_is_reported_together() {
    let refused = refusals_of(
        "[checkpoint]\ninterval = \"0s\"\n[metrics]\nnamespace = \"\"\n",
        &[
            ("KINETICK_PIPELINE__MAILBOX", "0"),
            ("KINETICK_AWS__TOPIC_ARN", "kinetick-alerts"),
            ("KINETICK_RULES__DEFAULT__RETURN_ZSCORE", "-1"),
        ],
    );
    assert_eq!(
        refused,
        [
            "invalid setting pipeline.mailbox = 0: must be at least 1",
            "invalid setting checkpoint.interval = 0s: must be above 0",
            "invalid setting rules.default.return-zscore = -1: must be a finite number of \
             standard deviations above 0",
            "invalid setting metrics.namespace = \"\": must be 1 to 255 of A-Z, a-z, 0-9, \
             space and . - _ / # :, not starting with AWS/ (CloudWatch's rule)",
            "invalid setting aws.topic-arn = \"kinetick-alerts\": must be an SNS topic ARN, \
             arn:<partition>:sns:<region>:<account>:<topic>",
        ]
    );
    let error = ConfigError::Invalid(
        Config {
            pipeline: PipelineConfig {
                mailbox: 0,
                ..Default::default()
            },
            ..Config::default()
        }
        .validate()
        .unwrap_err(),
    );
    assert_eq!(error.lines().len(), 1);
    assert_eq!(error.to_string(), error.lines()[0]);
}

/// Each variable set to the value refuses exactly the setting named.
#[test]
fn each_rule_names_its_setting() {
    let cases = [
        (
            "KINETICK_INPUT__MAX_RECORD_BYTES",
            "100",
            "input.max-record-bytes",
        ),
        (
            "KINETICK_INPUT__MAX_RECORD_BYTES",
            "1048577",
            "input.max-record-bytes",
        ),
        (
            "KINETICK_CHECKPOINT__MAX_RECORDS",
            "0",
            "checkpoint.max-records",
        ),
        ("KINETICK_LEASE__WORKER_ID", "task 1", "lease.worker-id"),
        ("KINETICK_LEASE__WORKER_ID", "", "lease.worker-id"),
        (
            "KINETICK_LEASE__SHARD_SYNC_INTERVAL",
            "0s",
            "lease.shard-sync-interval",
        ),
        (
            "KINETICK_LEASE__MAX_MOVES_PER_POLL",
            "0",
            "lease.max-moves-per-poll",
        ),
        ("KINETICK_WINDOWS__SMA_SHORT", "20", "windows.sma-short"),
        ("KINETICK_WINDOWS__SPAN", "0s", "windows.span"),
        ("KINETICK_WINDOWS__MIN_SAMPLES", "1", "windows.min-samples"),
        (
            "KINETICK_WINDOWS__MAX_SPAN_TICKS",
            "10",
            "windows.max-span-ticks",
        ),
        (
            "KINETICK_RULES__DEFAULT__PRICE_ABOVE",
            "0",
            "rules.default.price-above",
        ),
        (
            "KINETICK_RULES__DEFAULT__PRICE_BELOW",
            "-5",
            "rules.default.price-below",
        ),
        (
            "KINETICK_RULES__DEFAULT__CHANGE_PERCENT",
            "-0.5",
            "rules.default.change-percent",
        ),
        (
            "KINETICK_RULES__DEFAULT__RETURN_ZSCORE",
            "0",
            "rules.default.return-zscore",
        ),
        (
            "KINETICK_RULES__DEFAULT__VOLUME_SPIKE",
            "1",
            "rules.default.volume-spike",
        ),
        (
            "KINETICK_TABLE__FLUSH_INTERVAL",
            "0s",
            "table.flush-interval",
        ),
        (
            "KINETICK_TABLE__MAX_BUFFERED_ITEMS",
            "0",
            "table.max-buffered-items",
        ),
        ("KINETICK_TABLE__TTL", "500ms", "table.ttl"),
        ("KINETICK_LAKE__PREFIX", "/kinetick", "lake.prefix"),
        ("KINETICK_LAKE__PREFIX", "a//b", "lake.prefix"),
        ("KINETICK_ALERTS__MAX_BACKLOG", "0", "alerts.max-backlog"),
        ("KINETICK_METRICS__INTERVAL", "500ms", "metrics.interval"),
        (
            "KINETICK_METRICS__NAMESPACE",
            "AWS/Kinesis",
            "metrics.namespace",
        ),
        (
            "KINETICK_METRICS__NAMESPACE",
            "Kinetick!",
            "metrics.namespace",
        ),
        ("KINETICK_LOCAL__DIR", "", "local.dir"),
        ("KINETICK_AWS__STREAM_NAME", "", "aws.stream-name"),
        (
            "KINETICK_AWS__TICKS_TABLE",
            "kinetick-leases",
            "aws.checkpoint-table",
        ),
        ("KINETICK_AWS__BUCKET", "s3://kinetick-lake", "aws.bucket"),
        ("KINETICK_AWS__BUCKET", "kinetick-lake/data", "aws.bucket"),
        (
            "KINETICK_AWS__TOPIC_ARN",
            "arn:aws:sqs:us-east-1:123456789012:q",
            "aws.topic-arn",
        ),
        (
            "KINETICK_AWS__TOPIC_ARN",
            "arn:aws:sns:us-east-1:1234:alerts",
            "aws.topic-arn",
        ),
        (
            "KINETICK_AWS__START_POSITION",
            "at-timestamp",
            "aws.start-position",
        ),
        (
            "KINETICK_AWS__START_TIMESTAMP",
            "2026-01-02T14:30:00Z",
            "aws.start-timestamp",
        ),
        (
            "KINETICK_AWS__TABLE_WRITE_CONCURRENCY",
            "0",
            "aws.table-write-concurrency",
        ),
        ("KINETICK_HEALTH__LISTEN", "localhost", "health.listen"),
        ("KINETICK_HEALTH__LISTEN", "localhost:http", "health.listen"),
        (
            "KINETICK_HEALTH__UNHEALTHY_AFTER",
            "0s",
            "health.unhealthy-after",
        ),
        (
            "KINETICK_SYMBOLS__MAX_PER_SHARD",
            "0",
            "symbols.max-per-shard",
        ),
        ("KINETICK_SYMBOLS__EVICT_AFTER", "1m", "symbols.evict-after"),
    ];
    for (variable, value, setting) in cases {
        let refused = refusals(&[(variable, value)]);
        assert_eq!(refused.len(), 1, "{variable}={value}: {refused:?}");
        assert!(
            refused[0].starts_with(&format!("invalid setting {setting} = ")),
            "{variable}={value}: {refused:?}"
        );
    }
}

/// Values at the edge of a rule, or that mean something documented, load.
#[test]
fn values_within_the_rules_load() {
    let cases: &[&[(&str, &str)]] = &[
        &[("KINETICK_PIPELINE__WORKERS", "0")],
        &[("KINETICK_INPUT__MAX_RECORD_BYTES", "1048576")],
        &[("KINETICK_AWS__IDLE_POLL_INTERVAL", "0s")],
        &[("KINETICK_RULES__DEFAULT__COOLDOWN", "0s")],
        &[("KINETICK_RULES__DEFAULT__CHANGE_PERCENT", "1000000000")],
        &[
            ("KINETICK_WINDOWS__SMA_LONG", "0"),
            ("KINETICK_WINDOWS__SMA_SHORT", "50"),
        ],
        &[("KINETICK_WINDOWS__MAX_SPAN_TICKS", "11")],
        &[("KINETICK_LAKE__PREFIX", "a/b")],
        &[("KINETICK_METRICS__NAMESPACE", "Desk/Kinetick #1")],
        &[("KINETICK_LEASE__WORKER_ID", "ip-10-0-1-7.ec2.internal-42")],
        &[("KINETICK_AWS__BUCKET", "kinetick-lake.example")],
        &[(
            "KINETICK_AWS__TOPIC_ARN",
            "arn:aws-cn:sns:cn-north-1:123456789012:a_b-c",
        )],
        &[(
            "KINETICK_AWS__TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:alerts.fifo",
        )],
        &[
            ("KINETICK_AWS__START_POSITION", "at-timestamp"),
            (
                "KINETICK_AWS__START_TIMESTAMP",
                "2026-01-02T14:30:00.5+01:00",
            ),
        ],
        &[("KINETICK_HEALTH__LISTEN", "localhost:0")],
        &[("KINETICK_HEALTH__LISTEN", "[::1]:8080")],
        &[("KINETICK_SYMBOLS__EVICT_AFTER", "5m")],
        &[("KINETICK_TABLE__TTL", "1s")],
    ];
    for env in cases {
        assert_eq!(refusals(env), Vec::<String>::new(), "{env:?}");
    }
}

#[test]
fn a_symbols_price_levels_must_not_cross() {
    let refused = refusals_of(
        r#"
        [rules.default]
        price-below = 50.0
        [rules.symbols.AAPL]
        price-above = 412.75
        price-below = 420.0
        [rules.symbols.MSFT]
        price-above = 40.0
        [rules.symbols.IBM]
        price-below = 10.0
        [rules.symbols.TSLA]
        price-above = 100.0
        price-below = 100.0
        "#,
        &[],
    );
    assert_eq!(
        refused,
        [
            "invalid setting rules.symbols.AAPL.price-below = 420: must be below \
             rules.symbols.AAPL.price-above (412.75)",
            "invalid setting rules.symbols.MSFT.price-above = 40: must be above \
             rules.default.price-below (50)",
            "invalid setting rules.symbols.TSLA.price-below = 100: must be below \
             rules.symbols.TSLA.price-above (100)",
        ]
    );
    let refused = refusals_of(
        "[rules.default]\nprice-above = 10.0\nprice-below = 20.0\n\
         [rules.symbols.AAPL]\nprice-below = 5.0\n[rules.symbols.MSFT]\ncooldown = \"5m\"\n",
        &[],
    );
    assert_eq!(
        refused,
        [
            "invalid setting rules.default.price-below = 20: must be below \
          rules.default.price-above (10)"
        ]
    );
    // A threshold of a symbol is checked where it is set; TOML has nan and inf.
    assert_eq!(
        refusals_of(
            "[rules.symbols.AAPL]\nvolume-spike = 0.5\nchange-percent = nan\n\
             return-zscore = inf\n",
            &[]
        ),
        [
            "invalid setting rules.symbols.AAPL.change-percent = NaN: must be a finite \
             percentage above 0",
            "invalid setting rules.symbols.AAPL.return-zscore = inf: must be a finite number \
             of standard deviations above 0",
            "invalid setting rules.symbols.AAPL.volume-spike = 0.5: must be a finite multiple \
             of the mean volume above 1",
        ]
    );
}

#[test]
fn call_timeouts_are_positive_and_ordered() {
    assert_eq!(
        refusals_of(
            "[aws.timeouts.objects]\nattempt = \"5m\"\noperation = \"3m\"\n\
             [aws.timeouts.metrics]\nattempt = \"0s\"\noperation = \"30s\"\n",
            &[],
        ),
        [
            "invalid setting aws.timeouts.objects.attempt = 5m: must be at most \
             aws.timeouts.objects.operation (3m), which includes every attempt",
            "invalid setting aws.timeouts.metrics.attempt = 0s: must be above 0",
        ]
    );
    assert_eq!(
        refusals_of(
            "[aws.timeouts.leases]\nattempt = \"5s\"\noperation = \"20s\"\n",
            &[]
        ),
        [
            "invalid setting aws.timeouts.leases.operation = 20s: must be at most \
          lease.failover-time (10s): by then other workers take the lease as expired, and \
          a renewal's answer keeps nothing"
        ]
    );
}

#[test]
fn the_start_timestamp_goes_with_at_timestamp() {
    assert_eq!(
        refusals(&[
            ("KINETICK_AWS__START_POSITION", "at-timestamp"),
            ("KINETICK_AWS__START_TIMESTAMP", "2026-01-02 14:30"),
        ]),
        [
            "invalid setting aws.start-timestamp = \"2026-01-02 14:30\": must be an RFC 3339 \
          time, e.g. 2026-01-02T14:30:00Z"
        ]
    );
    assert_eq!(
        refusals(&[
            ("KINETICK_AWS__START_POSITION", "latest"),
            ("KINETICK_AWS__START_TIMESTAMP", "2026-01-02T14:30:00Z"),
        ]),
        [
            "invalid setting aws.start-timestamp = \"2026-01-02T14:30:00Z\": is only used with \
          aws.start-position = at-timestamp (it is latest)"
        ]
    );
}

#[test]
fn unreadable_settings_are_one_line_each() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("KINETICK_CHECKPOINT__MAX_RECORDS", "many");
        let error = Config::load(None).unwrap_err();
        let lines = error.lines();
        assert!(matches!(error, ConfigError::Unreadable(_)), "{error}");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("invalid configuration: "), "{lines:?}");
        let named = lines[0].to_lowercase().contains("checkpoint.max-records");
        assert!(named, "{lines:?}");
        Ok(())
    });
}
