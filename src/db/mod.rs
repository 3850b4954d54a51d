//! Everything that knows where PostgreSQL is: provisioning a server (URL, environment, or a
//! private ephemeral cluster), the run's own database, and value conversion; and a private
//! ephemeral MariaDB (`mariadb_ephemeral`) for the MariaDB engine. It must not know
//! about scenarios' meaning or statistics.

pub mod ephemeral;
pub mod mariadb_ephemeral;
pub mod server;
pub mod value;

pub use server::{RunDatabase, Server, ServerInfo, ServerOptions};
