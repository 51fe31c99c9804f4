//! `web_drop`'s options: every variable is `DROPKIT_*`, the older names
//! still work, and an admin token the operator gave is never printed.

use clap::Parser;

#[path = "../../examples/web_drop/options.rs"]
#[allow(dead_code)]
mod web_drop_options;

use web_drop_options::{AdminToken, Options};

fn parse(args: &[&str]) -> Options {
    Options::try_parse_from(std::iter::once("web_drop").chain(args.iter().copied()))
        .expect("options parse")
}

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn a_supplied_admin_token_is_never_printed() {
    let opts = parse(&["--admin-token", "s3cret-token"]);
    let token = opts.admin_token();
    assert!(matches!(token, AdminToken::Supplied(_)));
    assert_eq!(token.value(), "s3cret-token");
    assert!(
        !token.banner().contains("s3cret-token"),
        "{}",
        token.banner()
    );
    assert!(!format!("{opts:?}").contains("s3cret-token"));
    assert!(!format!("{token:?}").contains("s3cret-token"));
}

#[test]
fn a_generated_admin_token_is_printed() {
    let token = parse(&[]).admin_token();
    assert!(matches!(token, AdminToken::Generated(_)));
    assert_eq!(token.value().len(), 32);
    assert!(token.banner().contains(token.value()));
}

#[test]
fn older_variable_names_fill_unset_options() {
    let mut opts = parse(&["--store", "postgres"]);
    let used = opts.apply_legacy_env(env_of(&[
        ("ADMIN_TOKEN", "old-token"),
        ("DATABASE_URL", "postgres://db/old"),
        ("CORS_ORIGIN", "http://a.test, http://b.test"),
    ]));
    assert_eq!(used, ["DATABASE_URL", "ADMIN_TOKEN", "CORS_ORIGIN"]);
    assert_eq!(opts.admin_token().value(), "old-token");
    assert!(matches!(opts.admin_token(), AdminToken::Supplied(_)));
    assert_eq!(
        opts.database_url.as_ref().map(|u| u.expose()),
        Some("postgres://db/old")
    );
    assert_eq!(opts.cors_origin, ["http://a.test", "http://b.test"]);
}

#[test]
fn database_url_is_read_only_for_a_database() {
    let mut opts = parse(&[]);
    let used = opts.apply_legacy_env(env_of(&[("DATABASE_URL", "postgres://db/other")]));
    assert!(
        used.is_empty(),
        "no warning about a variable the memory store ignores"
    );
    assert!(opts.database_url.is_none());
}

#[test]
fn new_names_and_flags_win_over_older_variables() {
    let mut opts = parse(&[
        "--admin-token",
        "flag-token",
        "--cors-origin",
        "http://new.test",
    ]);
    let used = opts.apply_legacy_env(env_of(&[
        ("ADMIN_TOKEN", "old-token"),
        ("CORS_ORIGIN", "http://old.test"),
    ]));
    assert!(used.is_empty(), "{used:?}");
    assert_eq!(opts.admin_token().value(), "flag-token");
    assert_eq!(opts.cors_origin, ["http://new.test"]);
}

#[test]
fn database_settings_parse() {
    let opts = parse(&[
        "--db-max-connections",
        "8",
        "--no-migrate",
        "--trusted-proxy",
        "10.0.0.0/8,192.0.2.1",
    ]);
    assert_eq!(opts.trusted_proxy, ["10.0.0.0/8", "192.0.2.1"]);
    assert_eq!(opts.db_max_connections, 8);
    assert!(opts.no_migrate);
    let opts = parse(&[]);
    assert_eq!(opts.db_max_connections, 32, "the store's own default");
    assert!(!opts.no_migrate, "the store migrates on start by default");
}

#[test]
fn the_drain_period_is_bounded() {
    assert_eq!(parse(&[]).drain().unwrap(), std::time::Duration::ZERO);
    assert_eq!(
        parse(&["--drain-seconds", "2.5"]).drain().unwrap(),
        std::time::Duration::from_millis(2500)
    );
    for bad in ["-1", "7200"] {
        let flag = format!("--drain-seconds={bad}");
        assert!(parse(&[flag.as_str()]).drain().is_err(), "{bad}");
    }
}

#[test]
fn edge_bounds_default_to_the_api_defaults_and_are_checked() {
    use std::time::Duration;
    let opts = parse(&[]);
    assert_eq!(
        opts.header_timeout().unwrap(),
        drop_ws::DEFAULT_HEADER_TIMEOUT
    );
    assert_eq!(opts.conn_max_per_ip, drop_ws::DEFAULT_CONN_MAX_PER_IP);
    assert_eq!(opts.conn_max, drop_ws::DEFAULT_CONN_MAX);
    assert_eq!(opts.ws_max_per_ip, drop_ws::DEFAULT_WS_MAX_PER_IP);
    assert_eq!(opts.ws_max, drop_ws::DEFAULT_WS_MAX);
    assert_eq!(opts.ws_ping().unwrap(), drop_ws::DEFAULT_WS_PING_INTERVAL);
    assert_eq!(opts.ws_idle().unwrap(), drop_ws::DEFAULT_WS_IDLE_TIMEOUT);

    let opts = parse(&[
        "--header-timeout-seconds=0",
        "--conn-max-per-ip=8",
        "--conn-max=100",
        "--ws-max-per-ip=0",
        "--ws-max=50",
        "--ws-ping-seconds=0.5",
        "--ws-idle-seconds=0",
    ]);
    assert_eq!(opts.header_timeout().unwrap(), Duration::ZERO, "0 = off");
    assert_eq!((opts.conn_max_per_ip, opts.conn_max), (8, 100));
    assert_eq!((opts.ws_max_per_ip, opts.ws_max), (0, 50));
    assert_eq!(opts.ws_ping().unwrap(), Duration::from_millis(500));
    assert_eq!(opts.ws_idle().unwrap(), Duration::ZERO, "0 = never");

    assert!(
        parse(&["--ws-ping-seconds=0"]).ws_ping().is_err(),
        "pings need a period"
    );
    assert!(
        parse(&["--header-timeout-seconds=-1"])
            .header_timeout()
            .is_err()
    );
    assert!(parse(&["--ws-idle-seconds=7200"]).ws_idle().is_err());
    assert!(
        Options::try_parse_from(["web_drop", "--conn-max=-1"]).is_err(),
        "a cap is a count"
    );
}

#[test]
fn help_names_every_variable() {
    use clap::CommandFactory;
    let help = Options::command().render_long_help().to_string();
    for var in [
        "DROPKIT_STORE",
        "DROPKIT_DATABASE_URL",
        "DROPKIT_NO_GROUP_COMMIT",
        "DROPKIT_DB_ACQUIRE_TIMEOUT_MS",
        "DROPKIT_DB_MAX_CONNECTIONS",
        "DROPKIT_NO_MIGRATE",
        "DROPKIT_BIND",
        "DROPKIT_HOLD_SECONDS",
        "DROPKIT_ADMIN_TOKEN",
        "DROPKIT_CORS_ORIGIN",
        "DROPKIT_RATE_LIMIT",
        "DROPKIT_TRUSTED_PROXIES",
        "DROPKIT_NO_DEMO",
        "DROPKIT_DRAIN_SECONDS",
        "DROPKIT_LOG_FORMAT",
        "DROPKIT_HEADER_TIMEOUT_SECONDS",
        "DROPKIT_CONN_MAX_PER_IP",
        "DROPKIT_CONN_MAX",
        "DROPKIT_WS_MAX_PER_IP",
        "DROPKIT_WS_MAX",
        "DROPKIT_WS_PING_SECONDS",
        "DROPKIT_WS_IDLE_SECONDS",
        "DATABASE_URL",
        "ADMIN_TOKEN",
        "CORS_ORIGIN",
    ] {
        assert!(help.contains(var), "--help does not name {var}:\n{help}");
    }
    assert!(help.contains("json"), "{help}");
}
