//! Where a cold start's own work goes: times each step of the receiver's init in fresh processes
//! and prints the medians. The environment is cleared as Lambda's would be (no `SSL_CERT_*`, no
//! `HOME`), plus `NAME=VALUE` arguments for comparisons. No network: the clients are only built.
//!
//!   cargo build --release -p protime-webhooks --example init_phases
//!   target/release/examples/init_phases [--runs 25] [SSL_CERT_DIR=/etc/ssl/certs ...]

use protime_webhooks::aws::{read_ca_bundle_file_only, sdk_config};
use protime_webhooks::config::ReceiverConfig;
use protime_webhooks::receiver::AwsReceiver;
use std::process::Command;
use std::time::Instant;

const STEPS: [&str; 5] = [
    "pin the CA bundle file",
    "start the tokio runtime",
    "install logging",
    "load the SDK config (first client: CA store)",
    "build the receiver's clients",
];
const CHILD: &str = "INIT_PHASES_CHILD";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        return measure_once();
    }
    let mut args = std::env::args().skip(1);
    let mut runs = 25;
    let mut extra = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs takes a number"),
            pair => {
                let (name, value) = pair.split_once('=').expect("arguments are --runs N or NAME=VALUE");
                extra.push((name.to_string(), value.to_string()));
            }
        }
    }
    let exe = std::env::current_exe().expect("own path");
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); STEPS.len()];
    for _ in 0..runs {
        let output = Command::new(&exe)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs([(CHILD, "1"), ("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "local")])
            .envs([("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_LAMBDA_LOG_LEVEL", "ERROR")])
            .envs([("TABLE_NAME", "t"), ("SIGNING_KEYS_SECRET", "keys")])
            .envs(extra.iter().cloned())
            .output()
            .expect("run a measurement");
        let line = String::from_utf8_lossy(&output.stdout);
        for (step, value) in line.split_whitespace().enumerate() {
            samples[step].push(value.parse().expect("microseconds"));
        }
    }
    let mut total = 0.0;
    for (step, values) in STEPS.iter().zip(&mut samples) {
        values.sort_by(f64::total_cmp);
        let median = values[values.len() / 2];
        total += median;
        println!("{median:>9.0} µs  {step}");
    }
    println!("{total:>9.0} µs  in main before the first `next` (sum of medians of {runs} runs)");
}

fn measure_once() {
    let mut marks = vec![Instant::now()];
    // SAFETY: no other thread exists yet; the runtime starts on the next line.
    unsafe { read_ca_bundle_file_only() };
    marks.push(Instant::now());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    marks.push(Instant::now());
    protime_webhooks::observability::logging::init();
    marks.push(Instant::now());
    let config = ReceiverConfig::from_env().expect("receiver config");
    let sdk = runtime.block_on(sdk_config());
    marks.push(Instant::now());
    let receiver = AwsReceiver::from_config(&config, &sdk);
    marks.push(Instant::now());
    drop(receiver);
    let steps: Vec<String> = marks.windows(2).map(|w| format!("{:.1}", (w[1] - w[0]).as_secs_f64() * 1e6)).collect();
    println!("{}", steps.join(" "));
}
