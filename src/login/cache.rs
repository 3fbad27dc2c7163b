//! The token cache of `portcullis login`: one file per issuer and client under
//! `$XDG_CACHE_HOME/portcullis/`, readable by the user alone (0600 in a 0700 folder),
//! since it holds a refresh token.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::session::CachedTokens;
use crate::secrets::token_digest;

/// The cache folder: `$XDG_CACHE_HOME`, else `$HOME/.cache` (XDG Base Directory), then
/// `portcullis`. `None` when neither variable is set.
pub fn folder(xdg_cache_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let base = match (xdg_cache_home.filter(|v| Path::new(v).is_absolute()), home) {
        (Some(cache), _) => PathBuf::from(cache),
        (None, Some(home)) if !home.is_empty() => Path::new(home).join(".cache"),
        _ => return None,
    };
    Some(base.join("portcullis"))
}

/// The file for one issuer and client id, named by a digest of both so neither needs
/// escaping.
pub fn file(folder: &Path, issuer: &str, client_id: &str) -> PathBuf {
    folder.join(format!("{}.json", token_digest(&format!("{issuer}\n{client_id}"))))
}

/// The cached tokens; `None` when there are none or the file cannot be read as tokens
/// (the user then signs in again, which rewrites it).
pub fn load(path: &Path) -> Option<CachedTokens> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Writes the tokens through a 0600 temporary file renamed into place, so a reader never
/// sees half a file and the tokens are never readable by others, even for an instant.
pub fn store(path: &Path, tokens: &CachedTokens) -> std::io::Result<()> {
    let folder = path.parent().ok_or_else(|| std::io::Error::other("cache file has no folder"))?;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(folder)?;
    let temporary = path.with_extension("tmp");
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(&serde_json::to_vec(tokens).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_cache_home_wins_then_home_dot_cache() {
        assert_eq!(folder(Some("/c"), Some("/h")), Some(PathBuf::from("/c/portcullis")));
        assert_eq!(folder(None, Some("/h")), Some(PathBuf::from("/h/.cache/portcullis")));
        assert_eq!(
            folder(Some("relative"), Some("/h")),
            Some(PathBuf::from("/h/.cache/portcullis")),
            "XDG: relative paths are ignored"
        );
        assert_eq!(folder(None, None), None);
    }

    #[test]
    fn each_issuer_and_client_has_its_own_file() {
        let dir = Path::new("/c");
        assert_ne!(file(dir, "https://a.example", "kubectl"), file(dir, "https://b.example", "kubectl"));
        assert_ne!(file(dir, "https://a.example", "kubectl"), file(dir, "https://a.example", "other"));
        assert_eq!(file(dir, "https://a.example", "kubectl"), file(dir, "https://a.example", "kubectl"));
    }

    #[test]
    fn stored_tokens_load_back_and_are_private_to_the_user() {
        let dir = std::env::temp_dir().join(format!("portcullis-cache-test-{}", std::process::id()));
        let path = file(&dir.join("portcullis"), "https://a.example", "kubectl");
        let tokens = CachedTokens { id_token: "id".into(), refresh_token: Some("rt".into()) };
        store(&path, &tokens).unwrap();
        assert_eq!(load(&path), Some(tokens));
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        fs::write(&path, "not json").unwrap();
        assert_eq!(load(&path), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
