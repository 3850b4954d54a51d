//! `--db docker:IMAGE[:TAG]`: a throw-away server in a Docker container, through testcontainers.
//!
//! It parses the spec (the engine follows the image's name: postgres, mariadb or mysql), checks
//! within [`DAEMON_WAIT`] that a Docker daemon answers (`DOCKER_HOST`, else the default socket),
//! starts the image with an empty superuser password and the lab's no-durability settings,
//! and hands back the mapped port for the engine to connect to exactly as to a `--db` URL. The
//! container is removed when [`Container`] is removed or dropped. It must not connect to the
//! database itself, keep a container past the run, or pretend a daemon answered when none did.

use std::time::Duration;

use testcontainers::core::{ContainerPort, IntoContainerPort as _};
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};

use super::EngineKind;

/// How `--db` names a container.
pub const PREFIX: &str = "docker:";

/// How long the daemon has to answer before the run gives up.
pub const DAEMON_WAIT: Duration = Duration::from_secs(3);

/// The part of `--db` after `docker:`, when it names a container.
pub fn spec(db: &str) -> Option<&str> {
    db.strip_prefix(PREFIX)
}

/// An image reference: `name` (with registry and path, if any) and `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    pub tag: String,
}

impl Image {
    /// `postgres:15`, `mariadb` (tag `latest`), `registry:5000/library/postgres:16`.
    pub fn parse(spec: &str) -> Result<Image, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err("no image after `docker:` (e.g. docker:postgres:15)".into());
        }
        // A colon after the last slash starts the tag; one before it is a registry's port.
        let last_slash = spec.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match spec[last_slash..].rfind(':') {
            Some(i) => (&spec[..last_slash + i], &spec[last_slash + i + 1..]),
            None => (spec, "latest"),
        };
        if name.is_empty() || name.ends_with('/') {
            return Err(format!(
                "no image name in `{spec}` (e.g. docker:postgres:15)"
            ));
        }
        if tag.is_empty() {
            return Err(format!("empty tag in `{spec}` (e.g. docker:postgres:15)"));
        }
        if spec.chars().any(char::is_whitespace) {
            return Err(format!("`{spec}` is not an image reference"));
        }
        Ok(Image {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }

    /// The engine the image's own name (its last path component) says it runs.
    pub fn engine(&self) -> Option<EngineKind> {
        let base = self
            .name
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if base.starts_with("postgres") {
            Some(EngineKind::Postgres)
        } else if base.starts_with("mariadb") || base.starts_with("mysql") {
            Some(EngineKind::Mariadb)
        } else {
            None
        }
    }

    fn is_mysql(&self) -> bool {
        let base = self.name.rsplit('/').next().unwrap_or("");
        base.to_ascii_lowercase().starts_with("mysql")
    }
}

impl std::fmt::Display for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// Parses the part after `docker:` and settles the engine: the image's name, which `--engine`
/// (`chosen`) must agree with; `--engine` alone decides for an image whose name says nothing.
pub fn resolve(spec: &str, chosen: Option<EngineKind>) -> Result<(Image, EngineKind), String> {
    let image = Image::parse(spec)?;
    match (image.engine(), chosen) {
        (Some(of_image), Some(c)) if of_image != c => Err(format!(
            "--engine {c} but the image `{}` runs {}: drop one of them",
            image.name,
            of_image.title()
        )),
        (Some(e), _) | (None, Some(e)) => Ok((image, e)),
        (None, None) => Err(format!(
            "cannot tell the engine from the image name `{}`: expected postgres, mariadb or mysql \
             (or give --engine postgres|mariadb)",
            image.name
        )),
    }
}

/// Where the Docker client looks for the daemon, for messages.
fn daemon_address() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.trim().is_empty() => format!("DOCKER_HOST={h}"),
        _ => "unix:///var/run/docker.sock, the default socket (DOCKER_HOST is not set)".into(),
    }
}

/// Fails, within [`DAEMON_WAIT`], unless a Docker daemon answers a ping; the error says where
/// it looked and what to do instead.
pub async fn check_daemon() -> anyhow::Result<()> {
    let ping = async {
        let docker = testcontainers::core::client::docker_client_instance()
            .await
            .map_err(|e| e.to_string())?;
        docker.ping().await.map_err(|e| e.to_string())
    };
    let why = match tokio::time::timeout(DAEMON_WAIT, ping).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => format!("no answer within {}s", DAEMON_WAIT.as_secs()),
    };
    anyhow::bail!(
        "no Docker daemon answered at {}: {why}.\n\
         Without --db, contention starts a private server from the local binaries instead \
         (add --engine mariadb for MariaDB).",
        daemon_address()
    )
}

/// A running container with the server; removed when [`Container::remove`] is called or it is
/// dropped.
pub struct Container {
    inner: Option<ContainerAsync<GenericImage>>,
    pub image: Image,
    /// Where the server's port is mapped on the Docker host.
    pub host: String,
    pub port: u16,
}

impl Container {
    /// Checks the daemon, then starts `image` for `engine` (pulling it if needed) with the
    /// server options `settings` (`name`, `value`) after the lab's own. The server may still be
    /// initialising when this returns: the caller connects until it answers.
    pub async fn start(
        image: &Image,
        engine: EngineKind,
        settings: &[(String, String)],
    ) -> anyhow::Result<Container> {
        check_daemon().await?;
        let port: ContainerPort = match engine {
            EngineKind::Postgres => 5432.tcp(),
            EngineKind::Mariadb => 3306.tcp(),
        };
        let request = GenericImage::new(image.name.clone(), image.tag.clone())
            .with_exposed_port(port)
            .with_label("contention.pid", std::process::id().to_string())
            .with_startup_timeout(Duration::from_secs(600));
        let request = match engine {
            EngineKind::Postgres => request
                .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
                .with_cmd(server_args(engine, image, settings)),
            EngineKind::Mariadb => request
                .with_env_var("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1")
                .with_env_var("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")
                .with_cmd(server_args(engine, image, settings)),
        };
        let inner = request
            .start()
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the container {image}: {e}"))?;
        let mut container = Container {
            inner: None,
            image: image.clone(),
            host: String::new(),
            port: 0,
        };
        let host = inner.get_host().await;
        let mapped = inner.get_host_port_ipv4(port).await;
        // From here on, dropping `container` removes it.
        container.inner = Some(inner);
        container.host = match host.map_err(|e| anyhow::anyhow!("{e}"))?.to_string() {
            h if h == "localhost" => "127.0.0.1".into(),
            h => h,
        };
        container.port = mapped
            .map_err(|e| anyhow::anyhow!("no mapped port for {port} in the container: {e}"))?;
        Ok(container)
    }

    /// The container's id, shortened as `docker ps` shows it.
    pub fn id(&self) -> &str {
        self.inner
            .as_ref()
            .map_or("", |c| &c.id()[..c.id().len().min(12)])
    }

    /// Whether the container still runs (the server in it may have given up).
    pub async fn is_running(&self) -> bool {
        let Some(c) = &self.inner else {
            return false;
        };
        let Ok(docker) = testcontainers::core::client::docker_client_instance().await else {
            return false;
        };
        docker
            .inspect_container(c.id(), None)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.running)
            .unwrap_or(false)
    }

    /// The last lines the server wrote, for an error message.
    pub async fn log_tail(&self, lines: usize) -> String {
        let Some(c) = &self.inner else {
            return String::new();
        };
        let mut text = c.stdout_to_vec().await.unwrap_or_default();
        text.extend(c.stderr_to_vec().await.unwrap_or_default());
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Removes the container (stopping the server in it). Idempotent.
    pub fn remove(&mut self) {
        let Some(c) = self.inner.take() else {
            return;
        };
        // testcontainers removes a container when it is dropped, on the current runtime; off
        // one (a drop after the runtime ended), on a small runtime of our own.
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(c);
        } else if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async move { drop(c) });
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.remove();
    }
}

impl crate::engine::local::Stop for Container {
    fn stop(&mut self) {
        self.remove();
    }
}

/// The server's command-line options: the lab's (no durability, room for many clients) and then
/// the caller's, which win. The images' entrypoints pass arguments starting with `-` on to the
/// server.
fn server_args(engine: EngineKind, image: &Image, settings: &[(String, String)]) -> Vec<String> {
    match engine {
        EngineKind::Postgres => {
            let fixed = [
                ("fsync", "off"),
                ("synchronous_commit", "off"),
                ("full_page_writes", "off"),
                ("max_connections", "300"),
                ("max_prepared_transactions", "50"),
                ("max_locks_per_transaction", "128"),
            ];
            fixed
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain(settings.iter().cloned())
                .flat_map(|(k, v)| ["-c".to_string(), format!("{k}={v}")])
                .collect()
        }
        EngineKind::Mariadb => {
            let mut fixed = vec![
                ("innodb_flush_log_at_trx_commit", "0"),
                ("max_connections", "300"),
                ("character_set_server", "utf8mb4"),
                ("skip_name_resolve", ""),
            ];
            if !image.is_mysql() {
                fixed.push(("innodb_doublewrite", "0"));
                fixed.push(("collation_server", "utf8mb4_general_ci"));
            }
            fixed
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain(settings.iter().cloned())
                .map(|(k, v)| {
                    if v.is_empty() {
                        format!("--{k}")
                    } else {
                        format!("--{k}={v}")
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(s: &str) -> Image {
        Image::parse(s).unwrap()
    }

    #[test]
    fn parses_name_and_tag() {
        assert_eq!(
            image("postgres:15"),
            Image {
                name: "postgres".into(),
                tag: "15".into()
            }
        );
        assert_eq!(image("mariadb").tag, "latest");
        let i = image("registry.local:5000/library/postgres:16-alpine");
        assert_eq!(i.name, "registry.local:5000/library/postgres");
        assert_eq!(i.tag, "16-alpine");
        let i = image("registry.local:5000/mysql");
        assert_eq!(
            (i.name.as_str(), i.tag.as_str()),
            ("registry.local:5000/mysql", "latest")
        );
        assert_eq!(image("postgres:15").to_string(), "postgres:15");
    }

    #[test]
    fn refuses_empty_and_malformed_specs() {
        for bad in [
            "",
            "  ",
            ":15",
            "postgres:",
            "registry:5000/",
            "post gres:15",
        ] {
            assert!(Image::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(Image::parse("").unwrap_err().contains("no image"));
    }

    #[test]
    fn the_engine_follows_the_image_name() {
        let e = |s: &str| resolve(s, None).map(|(_, e)| e);
        assert_eq!(e("postgres:15"), Ok(EngineKind::Postgres));
        assert_eq!(e("bitnami/postgresql:16"), Ok(EngineKind::Postgres));
        assert_eq!(e("mariadb:10.11"), Ok(EngineKind::Mariadb));
        assert_eq!(e("mysql:8"), Ok(EngineKind::Mariadb));
        let unknown = e("redis:7").unwrap_err();
        assert!(unknown.contains("cannot tell the engine"), "{unknown}");
        assert!(unknown.contains("redis"), "{unknown}");
    }

    #[test]
    fn engine_must_agree_with_the_image() {
        assert_eq!(
            resolve("postgres:15", Some(EngineKind::Postgres)).map(|(_, e)| e),
            Ok(EngineKind::Postgres)
        );
        let clash = resolve("postgres:15", Some(EngineKind::Mariadb)).unwrap_err();
        assert!(clash.contains("--engine mariadb"), "{clash}");
        // An image whose name says nothing runs what --engine says.
        assert_eq!(
            resolve("postgis/postgis:16-3.4", Some(EngineKind::Postgres)).map(|(_, e)| e),
            Ok(EngineKind::Postgres)
        );
    }

    #[test]
    fn spec_only_for_docker_prefix() {
        assert_eq!(spec("docker:postgres:15"), Some("postgres:15"));
        assert_eq!(spec("docker:"), Some(""));
        assert_eq!(spec("postgres://u@h/db"), None);
    }

    #[test]
    fn server_args_put_the_callers_settings_last() {
        let s = [("max_connections".to_string(), "500".to_string())];
        let pg = server_args(EngineKind::Postgres, &image("postgres:15"), &s);
        assert_eq!(pg[0], "-c");
        assert_eq!(pg.last().unwrap(), "max_connections=500");
        let my = server_args(EngineKind::Mariadb, &image("mysql:8"), &s);
        assert!(my.contains(&"--skip_name_resolve".to_string()));
        assert!(!my.iter().any(|a| a.contains("doublewrite")));
        assert_eq!(my.last().unwrap(), "--max_connections=500");
    }
}
