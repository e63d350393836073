//! `flowline data fetch NAME`: download the standard files of a dataset and check them
//! against their published digests before they are put in place. `--from DIR` takes the
//! files from a local mirror instead of the network.

use md5::Md5;
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Digest {
    Sha256(&'static str),
    /// Where the publisher lists only MD5 (Fashion-MNIST, CIFAR-10).
    Md5(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Remote {
    pub file: &'static str,
    pub url: &'static str,
    pub digest: Digest,
}

pub struct Catalog {
    pub name: &'static str,
    /// Folder under the data directory.
    pub folder: &'static str,
    pub files: &'static [Remote],
    /// A `.tar.gz` whose `.bin` members are extracted into the folder.
    pub extract: bool,
}

const MNIST_URL: &str = "https://storage.googleapis.com/cvdf-datasets/mnist/";
const FASHION_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

pub const CATALOGS: [Catalog; 3] = [
    Catalog {
        name: "mnist",
        folder: "mnist",
        files: &[
            Remote {
                file: "train-images-idx3-ubyte.gz",
                url: MNIST_URL,
                digest: Digest::Sha256("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            },
            Remote {
                file: "train-labels-idx1-ubyte.gz",
                url: MNIST_URL,
                digest: Digest::Sha256("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            },
            Remote {
                file: "t10k-images-idx3-ubyte.gz",
                url: MNIST_URL,
                digest: Digest::Sha256("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            },
            Remote {
                file: "t10k-labels-idx1-ubyte.gz",
                url: MNIST_URL,
                digest: Digest::Sha256("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
            },
        ],
        extract: false,
    },
    Catalog {
        name: "fashion_mnist",
        folder: "fashion-mnist",
        files: &[
            Remote {
                file: "train-images-idx3-ubyte.gz",
                url: FASHION_URL,
                digest: Digest::Md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            },
            Remote {
                file: "train-labels-idx1-ubyte.gz",
                url: FASHION_URL,
                digest: Digest::Md5("25c81989df183df01b3e8a0aad5dffbe"),
            },
            Remote {
                file: "t10k-images-idx3-ubyte.gz",
                url: FASHION_URL,
                digest: Digest::Md5("bef4ecab320f06d8554ea6380940ec79"),
            },
            Remote {
                file: "t10k-labels-idx1-ubyte.gz",
                url: FASHION_URL,
                digest: Digest::Md5("bb300cfdad3c16e7a12a480ee83cd310"),
            },
        ],
        extract: false,
    },
    Catalog {
        name: "cifar10",
        folder: "cifar10",
        files: &[Remote {
            file: "cifar-10-binary.tar.gz",
            url: "https://www.cs.toronto.edu/~kriz/",
            digest: Digest::Md5("c32a1d4ab5d03f1284b67883e8d87530"),
        }],
        extract: true,
    },
];

pub fn catalog(name: &str) -> Option<&'static Catalog> {
    CATALOGS.iter().find(|c| c.name == name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Ok` when `bytes` have the expected digest, else `Err(actual)`.
pub fn check(bytes: &[u8], digest: Digest) -> Result<(), String> {
    let (actual, expected) = match digest {
        Digest::Sha256(e) => (hex(&Sha256::digest(bytes)), e),
        Digest::Md5(e) => (hex(&Md5::digest(bytes)), e),
    };
    if actual == expected { Ok(()) } else { Err(actual) }
}

const MAX_BYTES: u64 = 512 << 20;

fn obtain(remote: &Remote, from: Option<&Path>) -> Result<Vec<u8>, String> {
    match from {
        Some(dir) => {
            std::fs::read(dir.join(remote.file)).map_err(|e| format!("{}: {e}", dir.join(remote.file).display()))
        }
        None => {
            let url = format!("{}{}", remote.url, remote.file);
            let response = ureq::get(&url).call().map_err(|e| format!("{url}: {e}"))?;
            let mut bytes = Vec::new();
            response.into_reader().take(MAX_BYTES).read_to_end(&mut bytes).map_err(|e| format!("{url}: {e}"))?;
            Ok(bytes)
        }
    }
}

/// Fetch every file of `cat` into `data_dir/<folder>`, skipping files already present with
/// the right digest. Returns one line per file. Nothing unverified is ever written.
pub fn fetch(cat: &Catalog, data_dir: &Path, from: Option<&Path>) -> Result<Vec<String>, String> {
    let dir: PathBuf = data_dir.join(cat.folder);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut lines = Vec::new();
    for remote in cat.files {
        let target = dir.join(remote.file);
        if let Ok(existing) = std::fs::read(&target)
            && check(&existing, remote.digest).is_ok()
        {
            lines.push(format!("{}: present and verified", target.display()));
            continue;
        }
        let bytes = obtain(remote, from)?;
        if let Err(actual) = check(&bytes, remote.digest) {
            let (kind, expected) = match remote.digest {
                Digest::Sha256(e) => ("sha256", e),
                Digest::Md5(e) => ("md5", e),
            };
            return Err(format!(
                "{}: {kind} is {actual}, the published value is {expected}; the file was not saved",
                remote.file
            ));
        }
        crate::io::write_atomic(&target, &bytes).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        if cat.extract {
            extract_bins(&bytes, &dir)?;
        }
        lines.push(format!("{}: fetched and verified ({} bytes)", target.display(), bytes.len()));
    }
    Ok(lines)
}

/// The `.bin` members of a gzipped tarball, flattened into `dir`.
fn extract_bins(targz: &[u8], dir: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(targz));
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.to_path_buf();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if name.ends_with(".bin") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
            crate::io::write_atomic(&dir.join(&name), &bytes).map_err(|e| format!("cannot write {name}: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked() {
        // sha256("abc") and md5("abc")
        assert!(
            check(b"abc", Digest::Sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")).is_ok()
        );
        assert!(check(b"abc", Digest::Md5("900150983cd24fb0d6963f7d28e17f72")).is_ok());
        assert!(check(b"abd", Digest::Md5("900150983cd24fb0d6963f7d28e17f72")).is_err());
    }
}
