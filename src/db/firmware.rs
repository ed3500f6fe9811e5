//! Queries on `firmware_releases` and `firmware_files`: the catalogue of UC Software
//! releases and the checksum of every stored file.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::firmware::{FileStatus, ImageCover, Layout, Release, ReleaseFile};
use crate::domain::polycom::models::Family;
use crate::error::Result;

fn families_text(families: &[Family]) -> String {
    families
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(",")
}

fn families_of(text: &str) -> Vec<Family> {
    text.split(',').filter_map(Family::from_name).collect()
}

/// Inserts a release and its files. Run inside a transaction.
pub fn insert_release(conn: &Connection, r: &Release) -> Result<()> {
    conn.execute(
        "INSERT INTO firmware_releases (version, families, source, layout, imported_by, imported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            r.version,
            families_text(&r.families),
            r.source,
            r.layout.as_str(),
            r.imported_by,
            r.imported_at
        ],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO firmware_files (version, path, size, sha256, part_number, model, status, checked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for f in &r.files {
        stmt.execute(params![
            r.version,
            f.path,
            f.size as i64,
            f.sha256,
            f.part_number,
            f.model,
            f.status.as_str(),
            r.imported_at
        ])?;
    }
    Ok(())
}

fn load_files(conn: &Connection, version: &str) -> Result<Vec<ReleaseFile>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, size, sha256, part_number, model, status FROM firmware_files
         WHERE version = ?1 ORDER BY path",
    )?;
    let rows = stmt.query_map([version], |r| {
        let status: String = r.get(5)?;
        Ok(ReleaseFile {
            path: r.get(0)?,
            size: r.get::<_, i64>(1)?.max(0) as u64,
            sha256: r.get(2)?,
            part_number: r.get(3)?,
            model: r.get(4)?,
            status: FileStatus::parse(&status),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn release_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Release> {
    let families: String = r.get(1)?;
    let layout: String = r.get(3)?;
    Ok(Release {
        version: r.get(0)?,
        families: families_of(&families),
        source: r.get(2)?,
        layout: Layout::parse(&layout),
        imported_by: r.get(4)?,
        imported_at: r.get(5)?,
        files: Vec::new(),
    })
}

/// A release with its files.
pub fn find_release(conn: &Connection, version: &str) -> Result<Option<Release>> {
    let found = conn
        .prepare_cached(
            "SELECT version, families, source, layout, imported_by, imported_at
             FROM firmware_releases WHERE version = ?1",
        )?
        .query_row([version], release_row)
        .optional()?;
    match found {
        Some(mut r) => {
            r.files = load_files(conn, &r.version)?;
            Ok(Some(r))
        }
        None => Ok(None),
    }
}

/// Every release with its files, newest import first.
pub fn list_releases(conn: &Connection) -> Result<Vec<Release>> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, families, source, layout, imported_by, imported_at
         FROM firmware_releases ORDER BY imported_at DESC, version DESC",
    )?;
    let mut out: Vec<Release> = stmt
        .query_map([], release_row)?
        .collect::<rusqlite::Result<_>>()?;
    for r in &mut out {
        r.files = load_files(conn, &r.version)?;
    }
    Ok(out)
}

/// The versions in the catalogue with the families each covers (no files).
pub fn list_versions(conn: &Connection) -> Result<Vec<(String, Vec<Family>)>> {
    let mut stmt = conn.prepare_cached("SELECT version, families FROM firmware_releases")?;
    let rows = stmt.query_map([], |r| {
        let f: String = r.get(1)?;
        Ok((r.get::<_, String>(0)?, families_of(&f)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Which models the catalogue holds images for (`ImageCover`): two queries, whatever the
/// number of devices. A file found missing on disk holds nothing.
pub fn image_cover(conn: &Connection) -> Result<ImageCover> {
    let mut cover = ImageCover::default();
    let mut stmt = conn.prepare_cached(
        "SELECT version, upper(coalesce(model, '')), coalesce(part_number, '')
         FROM firmware_files WHERE part_number IS NOT NULL AND status <> 'missing'",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (version, model, part) = row?;
        if !model.is_empty() {
            cover.split.insert((version.clone(), model));
        }
        cover.split.insert((version, part));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT r.version, r.families FROM firmware_releases r
         WHERE EXISTS (SELECT 1 FROM firmware_files f WHERE f.version = r.version
                       AND f.part_number IS NULL AND f.status <> 'missing'
                       AND (f.path = 'sip.ld' OR f.path LIKE '%/sip.ld'))",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (version, families) = row?;
        cover.combined.insert(version, families_of(&families));
    }
    Ok(cover)
}

/// Deletes a release and its file rows. Run inside a transaction.
pub fn delete_release(conn: &Connection, version: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM firmware_releases WHERE version = ?1",
        [version],
    )? > 0)
}

/// Profiles naming a version, with the family they name it for: `(profile, family)`.
pub fn list_profiles_using(conn: &Connection, version: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.name, f.family FROM profile_firmware f JOIN profiles p ON p.id = f.profile_id
         WHERE f.version = ?1 ORDER BY p.name, f.family",
    )?;
    let rows = stmt.query_map([version], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records the outcome of a checksum check of one file.
pub fn update_file_status(
    conn: &Connection,
    version: &str,
    path: &str,
    status: FileStatus,
) -> Result<()> {
    conn.execute(
        "UPDATE firmware_files SET status = ?3, checked_at = ?4 WHERE version = ?1 AND path = ?2",
        params![version, path, status.as_str(), super::now_secs()],
    )?;
    Ok(())
}

/// The last check of a catalogued file; `None` for files not in the catalogue.
pub fn find_file_status(
    conn: &Connection,
    version: &str,
    path: &str,
) -> Result<Option<FileStatus>> {
    let s: Option<String> = conn
        .prepare_cached("SELECT status FROM firmware_files WHERE version = ?1 AND path = ?2")?
        .query_row(params![version, path], |r| r.get(0))
        .optional()?;
    Ok(s.map(|s| FileStatus::parse(&s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::open_in_memory;

    fn release() -> Release {
        Release {
            version: "5.9.8.1234".into(),
            families: vec![Family::Vvx, Family::Trio],
            source: "r.zip".into(),
            layout: Layout::Split,
            imported_by: "admin".into(),
            imported_at: 1,
            files: vec![ReleaseFile {
                path: "3111-46162-001.sip.ld".into(),
                size: 3,
                sha256: "ab".into(),
                part_number: Some("3111-46162-001".into()),
                model: Some("VVX410".into()),
                status: FileStatus::Ok,
            }],
        }
    }

    #[test]
    fn a_release_round_trips_and_its_files_go_with_it() {
        let conn = open_in_memory().expect("db");
        insert_release(&conn, &release()).expect("insert");
        let r = find_release(&conn, "5.9.8.1234")
            .expect("find")
            .expect("found");
        assert_eq!(r, release());
        update_file_status(&conn, &r.version, &r.files[0].path, FileStatus::Mismatch)
            .expect("status");
        assert_eq!(
            find_file_status(&conn, &r.version, &r.files[0].path).expect("status"),
            Some(FileStatus::Mismatch)
        );
        assert!(delete_release(&conn, &r.version).expect("delete"));
        assert_eq!(
            find_file_status(&conn, &r.version, &r.files[0].path).expect("status"),
            None
        );
    }
}
