//! A real PostgreSQL server for tests: a cluster of its own in a temporary folder, reached by
//! a Unix socket in that folder (no port to collide on), stopped by `pg_ctl` when dropped.
//! `initdb` refuses root, so when the tests run as root the server runs as the `postgres`
//! user (Debian's `postgresql` package creates it).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

/// Where this machine's PostgreSQL programs are: on the PATH, or in Debian's versioned folder.
fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (.ci/run installs Debian's postgresql package)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL server (initdb) under /usr/lib/postgresql")
}

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl Postgres {
    /// Creates a cluster (user `eddy`, trusted on its socket only) and starts it.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        if running_as_root() {
            let postgres = nix::unistd::User::from_name("postgres")
                .expect("the user database")
                .expect("the postgres user (Debian's postgresql package creates it)");
            std::os::unix::fs::chown(dir.path(), Some(postgres.uid.as_raw()), None)
                .expect("the folder is given to postgres");
        }
        let server = Self {
            dir,
            bin: bin_dir(),
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-U",
                "eddy",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        server.start_again();
        server.psql("postgres", "CREATE DATABASE eddy");
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The folder holding the server's socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://eddy@localhost/{database}?host={}",
            self.socket_dir().display()
        )
    }

    /// A new, empty database.
    pub fn create_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// Runs one statement with `psql` and returns what it printed (unaligned, no headers).
    pub fn psql(&self, database: &str, statement: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args(["-U", "eddy", "-d", database, "-c", statement])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql failed on {statement:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts the server (again), waiting until it takes connections.
    pub fn start_again(&self) {
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=on -c max_connections=200",
            self.socket_dir().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("log").display().to_string(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server as a crash would: `pg_ctl stop -m immediate` (no checkpoint; the next
    /// start replays the WAL).
    pub fn stop_immediately(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// `program` of this server's PostgreSQL, run as the `postgres` user when the tests are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.current_dir(self.dir.path());
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .expect("a PostgreSQL program runs");
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
