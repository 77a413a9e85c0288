//! A node's identity: the name its leases and credentials carry. A node started without one
//! takes the id in its data directory, made at its first start, so it is the same node after
//! a restart (and takes back its own leases).

use std::path::Path;

use crate::NodeError;

/// The file in the data directory that holds the node's id.
pub const NODE_ID_FILE: &str = "node-id";

/// The node id kept in `data_dir`, made (random) if there is none yet.
pub fn node_id(data_dir: &Path) -> Result<String, NodeError> {
    let path = data_dir.join(NODE_ID_FILE);
    let failed = |source| NodeError::NodeIdFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => checked(text.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 6];
            getrandom::fill(&mut bytes).expect("the operating system's random generator");
            let id = format!("node-{}", hex::encode(bytes));
            // Written aside and renamed into place: a crash leaves no half-written id.
            let staged = data_dir.join(format!("{NODE_ID_FILE}.new"));
            let mut options = std::fs::File::options();
            options.write(true).create(true).truncate(true);
            let mut file = eddy_bus::private_file(&staged, &mut options).map_err(failed)?;
            std::io::Write::write_all(&mut file, format!("{id}\n").as_bytes()).map_err(failed)?;
            file.sync_all().map_err(failed)?;
            std::fs::rename(&staged, &path).map_err(failed)?;
            std::fs::File::open(data_dir)
                .and_then(|d| d.sync_all())
                .map_err(failed)?;
            Ok(id)
        }
        Err(e) => Err(failed(e)),
    }
}

/// `id` if it is a valid node id: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn checked(id: String) -> Result<String, NodeError> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(id)
    } else {
        Err(NodeError::InvalidNodeId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_keeps_its_id_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = node_id(dir.path()).unwrap();
        assert!(first.starts_with("node-") && first.len() == 17, "{first}");
        assert_eq!(node_id(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(node_id(other.path()).unwrap(), first);
    }

    #[test]
    fn hostile_ids_are_refused() {
        for id in ["", "a b", "../x", "x\n", &"n".repeat(65), "ü"] {
            assert!(checked(id.to_string()).is_err(), "{id:?}");
        }
        assert_eq!(checked("eu-1.node_2".into()).unwrap(), "eu-1.node_2");
    }
}
