//! PostgreSQL on this machine without TLS: a connection to a loopback
//! address never leaves the kernel, so encrypting it protects nothing, yet
//! libpq's default (`sslmode=prefer`) negotiates TLS with any server that
//! has `ssl = on` (Debian's packages do) and then encrypts every query and
//! every row: a fifth of the CPU of a one-row read here. A URL that names
//! its own `sslmode`, or a `PGSSLMODE` in the environment, is kept as it is.

use std::borrow::Cow;

/// `url` with `sslmode=disable` added when every host it names is a
/// loopback address (`localhost`, `127.0.0.0/8`, `::1`) and neither the
/// URL nor `PGSSLMODE` (`sslmode_from_env`) chooses a mode; otherwise
/// `url` unchanged (a Unix socket, which libpq never encrypts, included).
pub fn without_tls_on_loopback(url: &str, sslmode_from_env: bool) -> Cow<'_, str> {
    if sslmode_from_env {
        return Cow::Borrowed(url);
    }
    let Some((_, rest)) = url.split_once("://") else {
        return Cow::Borrowed(url);
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let params = params(query);
    if params.iter().any(|(name, _)| *name == "sslmode") {
        return Cow::Borrowed(url);
    }
    let authority = before_query.split('/').next().unwrap_or("");
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    // A `host` parameter overrides the URL's hosts.
    let named: Vec<&str> = match params.iter().find(|(name, _)| *name == "host") {
        Some((_, value)) => value.split(',').collect(),
        None => hosts.split(',').map(host_of).collect(),
    };
    if !named.iter().all(|host| is_loopback(host)) {
        return Cow::Borrowed(url);
    }
    let separator = if query.is_some() { "&" } else { "?" };
    Cow::Owned(format!("{url}{separator}sslmode=disable"))
}

/// Whether `url` itself says `sslmode=disable` (libpq then never uses TLS).
pub fn says_no_tls(url: &str) -> bool {
    params(url.split_once('?').map(|(_, query)| query)).contains(&("sslmode", "disable"))
}

/// The `name=value` pairs of a URL's query.
fn params(query: Option<&str>) -> Vec<(&str, &str)> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .collect()
}

/// The host of `host[:port]` or `[v6][:port]`.
fn host_of(host_port: &str) -> &str {
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::without_tls_on_loopback as rewrite;

    #[test]
    fn a_loopback_server_is_reached_without_tls() {
        for (url, expected) in [
            (
                "postgres://u@127.0.0.1:5432/db",
                "postgres://u@127.0.0.1:5432/db?sslmode=disable",
            ),
            (
                "postgresql://u:p@localhost/db?application_name=x",
                "postgresql://u:p@localhost/db?application_name=x&sslmode=disable",
            ),
            (
                "postgres://[::1]:5433/db",
                "postgres://[::1]:5433/db?sslmode=disable",
            ),
            (
                "postgres://127.0.0.1,127.0.0.2:5433/db",
                "postgres://127.0.0.1,127.0.0.2:5433/db?sslmode=disable",
            ),
            (
                "postgres://db.example.com/db?host=127.0.0.1",
                "postgres://db.example.com/db?host=127.0.0.1&sslmode=disable",
            ),
        ] {
            assert_eq!(rewrite(url, false), expected, "{url}");
        }
    }

    #[test]
    fn a_remote_server_a_chosen_mode_or_a_socket_keeps_libpqs_choice() {
        for url in [
            "postgres://u@db.example.com/db",
            "postgres://u@10.0.0.5:5432/db",
            "postgres://127.0.0.1,db.example.com/db",
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@localhost/db?sslmode=verify-full&sslrootcert=/ca.pem",
            "postgresql:///db?host=/var/run/postgresql",
            "postgres:///db",
            "postgres://localhost/db?host=db.example.com",
        ] {
            assert_eq!(rewrite(url, false), url);
        }
        assert_eq!(
            rewrite("postgres://u@127.0.0.1/db", true),
            "postgres://u@127.0.0.1/db"
        );
    }
}
