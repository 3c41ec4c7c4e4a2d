//! The store's schema: the versioned SQL files of `room-service/migrations/`
//! (`<version>_<what>.sql`, applied in version order, never edited once
//! released: a change is a new file), compiled into the binary and applied
//! at connect by sqlx's migrator, which records what it applied in
//! `_sqlx_migrations` and holds an advisory lock meanwhile, so room-services
//! starting together migrate once.
//!
//! Why not `sqlx::migrate!`: that macro needs sqlx's `macros` feature, whose
//! proc-macro crate builds sqlx and its PostgreSQL driver a second time (for
//! the compiler) on every clean build. The list below embeds the same files
//! with `include_str!` and gives sqlx the same versions, descriptions and
//! checksums the macro would; a test checks it lists every file.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::PgConnection;

use super::StoreError;

/// Every migration: version, file name, SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "0001_messages.sql", include_str!("../../migrations/0001_messages.sql")),
    (2, "0002_rooms.sql", include_str!("../../migrations/0002_rooms.sql")),
    (3, "0003_people.sql", include_str!("../../migrations/0003_people.sql")),
    (4, "0004_attachments.sql", include_str!("../../migrations/0004_attachments.sql")),
    (5, "0005_attachment_records.sql", include_str!("../../migrations/0005_attachment_records.sql")),
    (6, "0006_message_changes.sql", include_str!("../../migrations/0006_message_changes.sql")),
    (7, "0007_moderation_rows.sql", include_str!("../../migrations/0007_moderation_rows.sql")),
];

/// The embedded files as a source for sqlx's migrator.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async { Ok(migrations()) })
    }
}

fn migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|&(version, file, sql)| {
            Migration::new(version, description(file).into(), MigrationType::Simple, Cow::Borrowed(sql), false)
        })
        .collect()
}

/// What sqlx's directory reader calls a migration: the file name between
/// the version and `.sql`, underscores as spaces.
fn description(file: &str) -> String {
    let name = file.strip_suffix(".sql").unwrap_or(file);
    let name = name.split_once('_').map_or(name, |(_, what)| what);
    name.replace('_', " ")
}

/// Applies the migrations this database has not had yet.
pub(crate) async fn run(conn: &mut PgConnection) -> Result<(), StoreError> {
    let migrator = Migrator::new(Embedded).await?;
    migrator.run(conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `migrations/` but not to [`MIGRATIONS`] would never
    /// run: every file is listed, with its own version and its own text.
    #[test]
    fn every_file_in_the_migrations_dir_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<(i64, String, String)> = std::fs::read_dir(&dir)
            .expect("read room-service/migrations")
            .map(|entry| {
                let entry = entry.expect("a dir entry");
                let name = entry.file_name().into_string().expect("a UTF-8 file name");
                let version = name
                    .split_once('_')
                    .and_then(|(v, _)| v.parse().ok())
                    .unwrap_or_else(|| panic!("migrations/{name} is not named <version>_<what>.sql"));
                let sql = std::fs::read_to_string(entry.path()).expect("read a migration");
                (version, name, sql)
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String, String)> =
            MIGRATIONS.iter().map(|&(v, f, s)| (v, f.to_owned(), s.to_owned())).collect();
        assert_eq!(embedded, files, "MIGRATIONS in store/migrations.rs must list every file of migrations/, in order");
    }

    #[test]
    fn descriptions_are_what_sqlx_reads_from_file_names() {
        assert_eq!(description("0001_messages.sql"), "messages");
        assert_eq!(description("0002_room_epochs.sql"), "room epochs");
    }
}
