//! The durable record of a local topology: which PostgreSQL the
//! room-services get as `DATABASE_URL`.
//!
//! `cargo xtask up` asks [`Store::choose`]: the one `--database-url` names,
//! else a scratch PostgreSQL started here when `initdb` is installed (PATH or
//! `/usr/lib/postgresql/*/bin`), else none — history is then what Redis (or
//! the in-process broker) keeps, `HISTORY_LEN` messages per room, and not
//! durable. The bench asks for a scratch one with [`Store::scratch`].
//!
//! A scratch PostgreSQL is testkit's [`PostgresServer`] (the same recipe the
//! tests use: `initdb` in a temp dir, a unix socket there and no TCP port, as
//! the `postgres` user when we are root), in a process group of its own so
//! a Ctrl+C reaches only us: we stop it after the room-services that write
//! to it ([`Store::stop`]), and its temp dir goes with it.
//!
//! [`Store::apply`] writes the choice into a [`Plan`]: `DATABASE_URL` for
//! every room-service, or, with no store, a `DATABASE_URL` left in the
//! developer's shell kept from them, so what `up` says is what runs.

use anyhow::Context;
use chat_testkit::PostgresServer;
use chat_testkit::postgres_server::{self, Options};

use crate::plan::{Inherit, Plan, ROOM_SERVICES};

/// The variable the room-services read the store from.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// What is said when there is no PostgreSQL, word for word.
pub const NO_STORE: &str = "PostgreSQL not found (no initdb on PATH or under /usr/lib/postgresql/*/bin): \
     history is what Redis keeps, HISTORY_LEN messages per room, and is NOT durable; no search \
     (apt-get install postgresql for the durable record, or --database-url URL)";

/// The PostgreSQL the room-services keep every message in, if any.
#[derive(Debug)]
pub enum Store {
    /// Started here; stopped and removed by [`Store::stop`] (or the drop).
    Scratch(Box<PostgresServer>),
    /// One someone else runs (`--database-url`).
    Existing(String),
    /// No store: history in Redis only.
    Absent { why: String },
}

impl Store {
    /// The store for `cargo xtask up`: `database_url` when given; else a
    /// scratch PostgreSQL when one is installed; else none. A scratch one
    /// that fails to start leaves `up` running without a store, saying why.
    pub async fn choose(database_url: Option<&str>) -> Self {
        if let Some(url) = database_url {
            return Store::Existing(url.to_owned());
        }
        if postgres_server::bin_dir().is_none() {
            return Store::Absent { why: NO_STORE.to_owned() };
        }
        match Self::scratch().await {
            Ok(store) => store,
            Err(error) => Store::Absent {
                why: format!(
                    "{error:#}: history is what Redis keeps, HISTORY_LEN messages per room, and is NOT durable; \
                     no search (or give --database-url URL)"
                ),
            },
        }
    }

    /// A scratch PostgreSQL in a temp dir, or why not.
    pub async fn scratch() -> anyhow::Result<Self> {
        let server = PostgresServer::try_start(Options { own_process_group: true })
            .await
            .context("could not start a scratch PostgreSQL")?;
        Ok(Store::Scratch(Box::new(server)))
    }

    /// The `DATABASE_URL` the room-services get.
    pub fn url(&self) -> Option<String> {
        match self {
            Store::Scratch(server) => Some(server.url()),
            Store::Existing(url) => Some(url.clone()),
            Store::Absent { .. } => None,
        }
    }

    /// The line `up` says about where history is kept.
    pub fn announcement(&self) -> String {
        match self {
            Store::Scratch(server) => format!(
                "history is kept in PostgreSQL at {} (a scratch cluster in {}, removed on exit; \
                 psql -h {} -U postgres)",
                server.url(),
                server.dir().display(),
                server.dir().display()
            ),
            Store::Existing(url) => format!("history is kept in PostgreSQL at {} (--database-url)", redact(url)),
            Store::Absent { why } => why.clone(),
        }
    }

    /// Gives every room-service of `plan` this store's `DATABASE_URL`, or,
    /// with none, keeps a `DATABASE_URL` of the shell from them.
    pub fn apply(&self, plan: &mut Plan) {
        match self.url() {
            Some(url) => plan.set_env(ROOM_SERVICES, DATABASE_URL, &url),
            None => {
                for tier in plan.tiers.iter_mut().filter(|tier| tier.role == ROOM_SERVICES) {
                    for process in &mut tier.processes {
                        process.env.remove(DATABASE_URL);
                        if let Inherit::AllBut(names) = &mut process.inherit
                            && !names.iter().any(|name| name == DATABASE_URL)
                        {
                            names.push(DATABASE_URL.to_owned());
                        }
                    }
                }
            }
        }
    }

    /// Stops a scratch PostgreSQL (a fast shutdown) and removes its dir;
    /// call it once the room-services are gone.
    pub async fn stop(self) {
        if let Store::Scratch(mut server) = self {
            server.stop().await;
            // The drop removes the temp dir.
        }
    }
}

/// `url` with its password replaced by `***`, for a line on the terminal.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::plan::{self, Binaries, Broker, Layout};

    fn plan_up() -> Plan {
        let layout = Layout {
            host: "127.0.0.1".to_owned(),
            gateways: 1,
            room_services: 2,
            first_port: 3000,
            first_grpc_port: 50051,
            first_metrics_port: 0,
        };
        let binaries =
            Binaries { room_service: PathBuf::from("/t/room-service"), gateway: PathBuf::from("/t/gateway") };
        plan::plan(&layout, &Broker::Existing { url: "redis://127.0.0.1:6379".to_owned() }, &binaries).expect("plan")
    }

    #[test]
    fn an_existing_store_reaches_every_room_service_and_no_gateway() {
        let mut plan = plan_up();

        Store::Existing("postgres://chat:pw@db/chat".to_owned()).apply(&mut plan);

        for process in plan.processes() {
            let url = process.env.get(DATABASE_URL).map(String::as_str);
            if process.name.starts_with("room-service") {
                assert_eq!(url, Some("postgres://chat:pw@db/chat"), "{}", process.name);
            } else {
                assert_eq!(url, None, "{}", process.name);
            }
        }
    }

    #[test]
    fn without_a_store_the_shells_database_url_is_kept_from_the_room_services() {
        let mut plan = plan_up();

        Store::Absent { why: NO_STORE.to_owned() }.apply(&mut plan);

        for process in plan.processes().filter(|p| p.name.starts_with("room-service")) {
            assert!(!process.env.contains_key(DATABASE_URL), "{}", process.name);
            assert!(
                matches!(&process.inherit, Inherit::AllBut(names) if names.iter().any(|n| n == DATABASE_URL)),
                "{}: {:?}",
                process.name,
                process.inherit
            );
        }
    }

    #[test]
    fn a_password_is_not_shown() {
        for (url, shown) in [
            ("postgres://chat:secret@db:5432/chat", "postgres://chat:***@db:5432/chat"),
            ("postgres://chat@db/chat", "postgres://chat@db/chat"),
            ("postgres://db/chat", "postgres://db/chat"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
        let said = Store::Existing("postgres://chat:secret@db/chat".to_owned()).announcement();
        assert!(!said.contains("secret"), "{said}");
    }
}
