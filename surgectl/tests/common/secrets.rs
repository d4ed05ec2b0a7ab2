//! The check that no key or token lies in clear in a dev cluster's files.

use std::path::PathBuf;

use super::DevCluster;

/// Asserts that none of `secrets` appears in any file of the dev cluster's directory (data
/// dirs, logs, cluster.json), the certificate directory and the admin token file aside.
pub fn assert_nowhere_in_clear(cluster: &DevCluster, secrets: &[String]) {
    let skip: Vec<PathBuf> = [
        cluster.file.certs.clone(),
        cluster.file.admin_token_file.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut scanned = 0;
    let mut stack = vec![cluster.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for file in std::fs::read_dir(&dir).expect("dir") {
            let path = file.expect("entry").path();
            if skip.contains(&path) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            for secret in secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret in clear in {}",
                    path.display()
                );
            }
            scanned += 1;
        }
    }
    assert!(scanned > 10, "only {scanned} files scanned");
}
