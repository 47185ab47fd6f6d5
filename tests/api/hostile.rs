//! Slow and huge clients against the real binary: every stalled body is
//! cut, unauthenticated bodies are not buffered, the health endpoint keeps
//! answering within a second, and the server's peak memory stays small.

use crate::both_backends;
use crate::helpers::{assert_problem, Backend, TestApp, SMALL_LIMIT};
use crate::served::{read_answer, RawAnswer, Served};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::net::TcpStream;
use std::time::Duration;

both_backends!(
    backend:
    stalled_webhook_posts_are_cut_cost_little_and_health_keeps_answering,
    stalled_and_unread_uploads_are_cut_and_declared_sizes_reserve_nothing,
    multipart_uploads_are_bounded_whole_with_few_small_fields_and_short_names,
    floods_of_made_up_links_and_keys_and_of_scrapes_take_few_threads,
    csv_downloads_nobody_reads_hold_no_thread_and_others_are_answered,
    heads_the_parser_cannot_take_get_a_bare_answer_and_a_closed_connection,
);

/// A Svix secret for the Resend webhook of the served process.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MIB: u64 = 1024 * 1024;

fn resend_head(extra: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    format!(
        "POST /webhooks/resend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         svix-id: msg_1\r\nsvix-timestamp: {now}\r\nsvix-signature: v1,c2lnbmF0dXJl\r\n{extra}\r\n"
    )
}

/// One chunk of a chunked body, `n` bytes long.
fn chunk(n: usize) -> Vec<u8> {
    let mut bytes = format!("{n:x}\r\n").into_bytes();
    bytes.extend(std::iter::repeat_n(b'[', n));
    bytes.extend_from_slice(b"\r\n");
    bytes
}

/// Opens `n` connections, each writing `head` then stalling (reading
/// nothing: with a small receive buffer, a long answer stops soon).
async fn open_stalled(served: &Served, head: Vec<u8>, n: usize) -> Vec<TcpStream> {
    let port = served.port;
    tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|_| {
                use std::io::Write;
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                        .expect("socket");
                socket.set_recv_buffer_size(4096).expect("buffer");
                let address: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
                socket.connect(&address.into()).expect("connect");
                let mut stream: TcpStream = socket.into();
                stream.write_all(&head).expect("write");
                stream
            })
            .collect()
    })
    .await
    .expect("connections")
}

async fn answers(streams: Vec<TcpStream>, limit: Duration) -> Vec<RawAnswer> {
    tokio::task::spawn_blocking(move || {
        let handles: Vec<_> = streams
            .into_iter()
            .map(|s| std::thread::spawn(move || read_answer(s, limit)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader"))
            .collect()
    })
    .await
    .expect("answers")
}

async fn assert_health_answers(served: &Served) {
    let took = served.health_within(Duration::from_secs(1)).await;
    assert!(
        took.is_some(),
        "/healthz did not answer within 1 s under attack"
    );
}

async fn stalled_webhook_posts_are_cut_cost_little_and_health_keeps_answering(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let served = Served::start(
        &app,
        &[
            ("REQUEST_BODY_TIMEOUT_SECS", "2"),
            ("RESEND_WEBHOOK_SECRET", SECRET),
        ],
    )
    .await;
    let before = served.peak_memory();

    // 200 verified-looking posts that send 64 KiB of a chunked body, then stall.
    let mut head = resend_head("Transfer-Encoding: chunked\r\n").into_bytes();
    head.extend(chunk(64 * 1024));
    let trickling = open_stalled(&served, head, 200).await;
    // 200 posts that declare 4 MiB (past WEBHOOK_MAX_BYTES) and send a byte.
    let head = resend_head(&format!("Content-Length: {}\r\n", 4 * MIB)) + "[";
    let declared = open_stalled(&served, head.into_bytes(), 200).await;
    assert_health_answers(&served).await;

    let declared = answers(declared, Duration::from_secs(2)).await;
    for answer in &declared {
        assert_eq!(answer.status, Some(413), "{answer:?}");
        assert!(
            answer.head.contains("application/problem+json"),
            "{answer:?}"
        );
        assert!(
            answer.closed,
            "a refused body's connection stays open: {answer:?}"
        );
    }
    assert_health_answers(&served).await;

    let trickled = answers(trickling, Duration::from_secs(6)).await;
    for answer in &trickled {
        assert_eq!(answer.status, Some(408), "{answer:?}");
        assert!(
            answer.closed && answer.after < Duration::from_secs(5),
            "{answer:?}"
        );
    }
    assert_health_answers(&served).await;
    let added = served.peak_memory().saturating_sub(before);
    println!(
        "400 hostile webhook posts added {} KiB to the peak",
        added / 1024
    );
    assert!(added < 50 * MIB, "peak memory grew by {added} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_bodies_cannot_take_the_room_health_checks_need() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let served = Served::start(
        &app,
        &[
            ("REQUEST_BODY_TIMEOUT_SECS", "30"),
            ("MAX_CONNECTIONS", "3000"),
            ("RESEND_WEBHOOK_SECRET", SECRET),
        ],
    )
    .await;
    // 2,500 connections trickling webhook bodies, about a thousand new
    // ones a second: at most half the
    // connection cap (1,500) may be receiving a body; the others are
    // answered 503 at once and closed.
    let mut head = resend_head("Transfer-Encoding: chunked\r\n").into_bytes();
    head.extend(chunk(1));
    let flood = tokio::spawn({
        let served_port = served.port;
        async move {
            let port = served_port;
            tokio::task::spawn_blocking(move || {
                (0..2_500)
                    .map(|i| {
                        use std::io::Write;
                        if i % 100 == 99 {
                            // About a thousand new connections a second.
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                        s.write_all(&head).expect("write");
                        s
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .expect("flood")
        }
    });
    let mut worst = Duration::ZERO;
    while !flood.is_finished() {
        let took = served.health_within(Duration::from_secs(1)).await;
        worst = worst.max(took.expect("/healthz did not answer within 1 s during the flood"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let streams = flood.await.expect("flood");
    assert_health_answers(&served).await;
    println!("/healthz answered within {worst:?} during a flood of 2,500 slow bodies");
    let answered = answers(streams, Duration::from_millis(1500)).await;
    let refused = answered.iter().filter(|a| a.status == Some(503)).count();
    let held = answered
        .iter()
        .filter(|a| a.status.is_none() && !a.closed)
        .count();
    assert_eq!(refused + held, 2_500, "every slow body is held or refused");
    assert!(
        held <= 1_500,
        "{held} bodies held past half the connection cap"
    );
    assert!(refused >= 1_000, "only {refused} refused");
}

async fn stalled_and_unread_uploads_are_cut_and_declared_sizes_reserve_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // One account's uploads at once are not bounded here: this is about
    // what stalled bodies cost (keys_and_limits tests the bound).
    let served = Served::start(
        &app,
        &[
            ("REQUEST_BODY_TIMEOUT_SECS", "2"),
            ("MAX_CONCURRENT_IMPORTS_PER_ACCOUNT", "0"),
        ],
    )
    .await;
    let before = served.peak_memory();
    let key = format!("Authorization: Bearer {}\r\n", app.api_key);

    // 100 authenticated uploads declaring 32 MiB each, sending 1 KiB.
    let head = format!(
        "POST /imports HTTP/1.1\r\nHost: x\r\n{key}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        32 * MIB
    );
    let mut bytes = head.into_bytes();
    bytes.extend(std::iter::repeat_n(b'a', 1024));
    let declared = open_stalled(&served, bytes, 100).await;
    // Chunked uploads without a key, trickling: answered 401 and closed at
    // once, not drained at the client's pace.
    let unauthenticated = "POST /imports HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
                           Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n";
    let mut unauthenticated = open_stalled(&served, unauthenticated.as_bytes().to_vec(), 20).await;
    // 100 with made-up keys, each different (none is remembered): each is
    // looked up, at most a few at once, and refused.
    for i in 0..100 {
        let head = format!(
            "POST /imports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bik_madeup{i}\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\n\r\na",
            32 * MIB
        );
        unauthenticated.extend(open_stalled(&served, head.into_bytes(), 1).await);
    }
    assert_health_answers(&served).await;

    for answer in answers(unauthenticated, Duration::from_secs(4)).await {
        assert_eq!(answer.status, Some(401), "{answer:?}");
        assert!(
            answer.closed && answer.after < Duration::from_millis(1900),
            "{answer:?}"
        );
    }
    let started = std::time::Instant::now();
    for answer in answers(declared, Duration::from_secs(6)).await {
        assert_eq!(answer.status, Some(408), "{answer:?}");
        assert!(
            answer.head.contains("application/problem+json"),
            "{answer:?}"
        );
        assert!(answer.closed, "{answer:?}");
    }
    println!(
        "stalled uploads cut {:?} after the readers started",
        started.elapsed()
    );
    let added = served.peak_memory().saturating_sub(before);
    println!(
        "100 stalled 32 MiB uploads and 120 refused ones added {} KiB to the peak",
        added / 1024
    );
    // Each stalled upload holds little; a thread per key lookup (as once)
    // held about half a MiB each.
    assert!(added < 24 * MIB, "peak memory grew by {added} bytes");
    // The server still takes uploads afterwards.
    let response = app
        .client
        .post(served.url("/imports"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("after@example.com\n")
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);
}

async fn multipart_uploads_are_bounded_whole_with_few_small_fields_and_short_names(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| c.max_upload_bytes = SMALL_LIMIT).await;
    let file = || Part::bytes(b"ann@example.com\n".to_vec()).file_name("team.txt");

    let mut form = Form::new().part("file", file());
    for i in 0..9 {
        form = form.text(format!("extra{i}"), "x");
    }
    assert_problem(app.upload_form(form).await, 400, "too-many-fields").await;

    let form = Form::new()
        .part("file", file())
        .text("message", "m".repeat(9_000));
    let detail = assert_problem(app.upload_form(form).await, 413, "field-too-large").await;
    assert!(detail.contains("`message`"), "{detail}");

    let long = format!("{}.txt", "n".repeat(300));
    let form = Form::new().part(
        "file",
        Part::bytes(b"ann@example.com\n".to_vec()).file_name(long),
    );
    assert_problem(app.upload_form(form).await, 400, "invalid-filename").await;

    // A file name larger than the whole limit, sent chunked (no declared
    // length): the part header alone passes MAX_UPLOAD_BYTES, and the body
    // is cut there.
    let huge = "n".repeat(SMALL_LIMIT as usize * 3);
    let body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{huge}.txt\"\r\n\r\n\
         ann@example.com\n\r\n--XyZ--\r\n"
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .into_bytes()
        .chunks(8192)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let response = app
        .client
        .post(app.url("/imports"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("post");
    assert_problem(response, 413, "body-too-large").await;
    assert_eq!(app.count_rows("imports"), 0);

    // `filename*` (RFC 6266) carries a UTF-8 name.
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"equipe.txt\"; \
                filename*=UTF-8''%C3%A9quipe.txt\r\nContent-Type: text/plain\r\n\r\n\
                ann@example.com\n\r\n--XyZ--\r\n";
    let response = app
        .client
        .post(app.url("/imports"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 201);
    let import: Value = response.json().await.expect("JSON");
    assert_eq!(import["filename"], "équipe.txt");
}

/// Made-up invitation links and API keys are each looked up in the
/// database; 400 of them at once wait for the read turns instead of taking
/// a blocking thread each (they once took about a hundred, half a MiB each).
/// `/metrics` and `/readyz` need no key either: 200 scrapes and 200 probes
/// at once ask the database one question at a time and all get the answer.
async fn floods_of_made_up_links_and_keys_and_of_scrapes_take_few_threads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let served = Served::start(&app, &[("RATE_LIMIT_PER_MINUTE", "0")]).await;
    let before = served.threads();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let requests = (0..800).map(|i| {
        let request = match i % 4 {
            0 => client.get(served.url(&format!("/accept/made-up-{i}"))),
            1 => client
                .get(served.url("/imports"))
                .bearer_auth(format!("bik_madeup{i}")),
            2 => client.get(served.url("/metrics")),
            _ => client.get(served.url("/readyz")),
        };
        async move {
            let response = request.send().await.expect("answer");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    for (i, (status, body)) in answers.iter().enumerate() {
        let expected = [404, 401, 200, 200][i % 4];
        assert_eq!(*status, expected, "request {i}: {body}");
        let says = [
            "",
            "",
            "bulk_invite_invitations_due 0",
            r#""status":"ready""#,
        ][i % 4];
        assert!(body.contains(says), "request {i}: {body}");
    }
    let added = served.threads().saturating_sub(before);
    println!("800 made-up links and keys, scrapes and probes at once added {added} threads");
    assert!(added <= 40, "{added} threads added");
    assert_health_answers(&served).await;
}

/// A CSV download whose client stops reading holds only the page it has
/// not taken: 100 of them at once (each once held a thread and two MiB,
/// and 600 stopped the server) leave the threads as they were, and the
/// account's other requests are answered; a client that reads gets every
/// row, a last full page included.
async fn csv_downloads_nobody_reads_hold_no_thread_and_others_are_answered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // 60 pages of the CSV's 1,000 rows, about 4 MiB: more than the
    // socket buffers take.
    let file: String = (1..=60_000)
        .map(|n| format!("user{n}@example.com\n"))
        .collect();
    let import = app.import(file).await;
    let id = import["id"].as_str().expect("id").to_owned();
    let served = Served::start(&app, &[("RATE_LIMIT_PER_MINUTE", "0")]).await;
    let before = served.threads();
    let before_memory = served.peak_memory();

    let head = format!(
        "GET /imports/{id}/report.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        app.api_key
    );
    let stalled = open_stalled(&served, head.into_bytes(), 100).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let other = app
        .client
        .get(served.url(&format!("/imports/{id}")))
        .bearer_auth(&app.api_key)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the import is answered beside the stalled downloads");
    assert_eq!(other.status(), 200);
    let csv = app
        .client
        .get(served.url(&format!("/imports/{id}/report.csv")))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .expect("a download that reads");
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.expect("the whole CSV");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 60_001);
    assert_eq!(
        lines[60_000],
        "60000,60000,user60000@example.com,user60000@example.com,queued,,"
    );

    let added = served.threads().saturating_sub(before);
    let memory = served.peak_memory().saturating_sub(before_memory);
    println!(
        "100 CSV downloads nobody reads added {added} threads and {} KiB to the peak",
        memory / 1024
    );
    assert!(added <= 40, "{added} threads added");
    assert!(memory < 128 * MIB, "peak memory grew by {memory} bytes");
    drop(stalled);
}

/// A head the HTTP parser cannot take reaches no handler: a control
/// character in a header value gets a bare 400; more than 96 headers, or a
/// head over 128 KiB (a long header, a long URL), a bare 431. Each closes
/// the connection; a head just under the limits is served.
async fn heads_the_parser_cannot_take_get_a_bare_answer_and_a_closed_connection(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let served = Served::start(&app, &[]).await;
    let headers = |n: usize| -> String { (0..n).map(|i| format!("X-H{i}: v\r\n")).collect() };
    let cases = [
        (
            "a control character",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n".to_owned(),
            Some(400),
        ),
        (
            "97 headers",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n", headers(96)),
            Some(431),
        ),
        (
            "a 200 KiB header",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "v".repeat(200 * 1024)
            ),
            Some(431),
        ),
        (
            "a 200 KiB URL",
            format!(
                "GET /healthz?{} HTTP/1.1\r\nHost: x\r\n\r\n",
                "a".repeat(200 * 1024)
            ),
            Some(431),
        ),
        (
            "96 headers",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\n\r\n",
                headers(94)
            ),
            Some(200),
        ),
    ];
    for (what, head, status) in cases {
        let stream = open_stalled(&served, head.into_bytes(), 1).await;
        let answer = answers(stream, Duration::from_secs(3)).await.remove(0);
        assert_eq!(answer.status, status, "{what}: {answer:?}");
        assert!(answer.closed, "{what}: {answer:?}");
        if status != Some(200) {
            assert!(
                answer.head.contains("content-length: 0"),
                "{what}: {answer:?}"
            );
        }
    }
    assert_health_answers(&served).await;
}
