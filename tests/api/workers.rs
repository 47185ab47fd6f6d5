//! Worker processes (`bulk-invite worker`): several share the queue and
//! never send an invitation twice; one killed mid-batch loses nothing; one
//! asked to stop finishes its batch first.

use crate::both_backends;
use crate::fakes::{self, postmark_ids, ResendBatch};
use crate::helpers::{counts, wait_until, Backend, TestApp};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

both_backends!(
    backend:
    four_workers_send_each_of_20000_invitations_exactly_once,
    a_worker_killed_mid_batch_loses_nothing_and_the_resent_batch_keeps_its_key,
    a_worker_asked_to_stop_finishes_its_batch_and_leaves_no_lease,
);

/// Starts `bulk-invite worker` on the app's database with the given provider settings.
fn spawn_worker(app: &TestApp, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulk-invite"));
    command
        .arg("worker")
        .env("DATABASE_URL", &app.database_url)
        .env("DISPATCH_POLL_MS", "50")
        .env("DATABASE_POOL_SIZE", "3")
        .env("BULK_INVITE_TOKEN_SECRET", "the same on every worker")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("start a worker")
}

fn postmark_env(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("EMAIL_PROVIDER", "postmark".into()),
        ("POSTMARK_BASE_URL", server.uri()),
        ("POSTMARK_SERVER_TOKEN", "server-token".into()),
    ]
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait().expect("wait for the worker")
}

fn addresses(n: usize) -> String {
    (0..n).map(|i| format!("person{i}@example.com\n")).collect()
}

async fn wait_until_sent(app: &TestApp, n: i64, timeout: Duration) {
    wait_until(timeout, || async {
        (app.count_where("invitations", "status = 'sent'") == n).then_some(())
    })
    .await;
}

async fn four_workers_send_each_of_20000_invitations_exactly_once(backend: Backend) {
    let server = fakes::postmark(Duration::ZERO).await;
    let app = TestApp::spawn(backend).await;
    let import = app.import(addresses(20_000)).await;
    let mut env = postmark_env(&server);
    env.push(("DISPATCH_BATCH_SIZE", "250".into()));

    let mut workers: Vec<Child> = (0..4).map(|_| spawn_worker(&app, &env)).collect();
    wait_until_sent(&app, 20_000, Duration::from_secs(240)).await;
    for worker in &mut workers {
        assert!(terminate(worker).success());
    }

    let ids = postmark_ids(&server).await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (20_000, 20_000),
        "each invitation sent exactly once"
    );
    let done: Value = app
        .get(&format!("/imports/{}", import["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(counts(&done)["sent"], 20_000);
}

async fn a_worker_killed_mid_batch_loses_nothing_and_the_resent_batch_keeps_its_key(
    backend: Backend,
) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/emails/batch"))
        .respond_with(ResendBatch {
            delay: Duration::from_millis(1_500),
        })
        .mount(&server)
        .await;
    let app = TestApp::spawn(backend).await;
    app.import(addresses(300)).await;
    let env = vec![
        ("EMAIL_PROVIDER", "resend".to_owned()),
        ("RESEND_BASE_URL", server.uri()),
        ("RESEND_API_KEY", "re_test".into()),
        ("DISPATCH_BATCH_SIZE", "100".into()),
        ("DISPATCH_LEASE_SECS", "2".into()),
    ];

    let mut first = spawn_worker(&app, &env);
    wait_until(Duration::from_secs(30), || async {
        (!server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty())
        .then_some(())
    })
    .await;
    first.kill().expect("SIGKILL the worker mid-batch");
    first.wait().unwrap();
    assert_eq!(
        app.count_where("invitations", "status = 'sent'"),
        0,
        "killed before recording"
    );
    let mut second = spawn_worker(&app, &env);
    wait_until_sent(&app, 300, Duration::from_secs(60)).await;
    terminate(&mut second);

    let requests = server.received_requests().await.unwrap();
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for request in &requests {
        let key = request.headers["idempotency-key"]
            .to_str()
            .unwrap()
            .to_owned();
        let messages: Vec<Value> = serde_json::from_slice(&request.body).unwrap();
        for m in messages {
            sent.entry(m["tags"][0]["value"].as_str().unwrap().to_owned())
                .or_default()
                .push(key.clone());
        }
    }
    assert_eq!(sent.len(), 300, "every invitation was sent");
    let twice: Vec<&Vec<String>> = sent.values().filter(|keys| keys.len() > 1).collect();
    assert_eq!(
        twice.len(),
        100,
        "only the batch in flight at the kill went out again"
    );
    assert!(
        twice
            .iter()
            .all(|keys| keys.len() == 2 && keys[0] == keys[1]),
        "with the same Idempotency-Key"
    );
}

async fn a_worker_asked_to_stop_finishes_its_batch_and_leaves_no_lease(backend: Backend) {
    let server = fakes::postmark(Duration::from_millis(1_000)).await;
    let app = TestApp::spawn(backend).await;
    app.import(addresses(50)).await;
    let mut worker = spawn_worker(&app, &postmark_env(&server));
    wait_until(Duration::from_secs(30), || async {
        (!server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty())
        .then_some(())
    })
    .await;

    let status = terminate(&mut worker);

    assert!(status.success(), "clean exit: {status}");
    assert_eq!(app.count_where("invitations", "status = 'sent'"), 50);
    assert_eq!(app.count_where("invitations", "lease_owner IS NOT NULL"), 0);
}
