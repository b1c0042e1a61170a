//! Stage 4, classify: an image path → the first matching category rule.
//!
//! The rule table is data ([`builtin_rules`]); `--rules FILE.toml` can add rules
//! or override built-in ones. Rules are compiled once into one [`GlobSet`], and
//! a path's category is the lowest-numbered rule with a matching glob.

use std::fmt::Write as _;

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Name of the catch-all category; it is always last and has no globs.
pub const OTHER: &str = "other";

/// One classification rule: a name and the globs that select its files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// Category name, as it appears in reports and budgets.
    pub name: String,
    /// Globs over normalised image paths (`/usr/include/**`, `**/*.a`).
    pub globs: Vec<String>,
}

/// CUDA libraries by stem: `lib<stem>` then `.`, `_` or `-`, with `.so` in the name.
pub const CUDA_LIB_STEMS: &[&str] = &[
    "cublas",
    "cublasLt",
    "cudart",
    "cudnn",
    "cufft",
    "cufftw",
    "curand",
    "cusolver",
    "cusolverMg",
    "cusparse",
    "cusparseLt",
    "nccl",
    "nvrtc",
    "nvJitLink",
    "nvToolsExt",
    "nvblas",
    "nvjpeg",
    "npp",
    "cufile",
    "cuda",
    "nvidia-ml",
];

fn rule(name: &str, globs: &[&str]) -> Rule {
    Rule {
        name: name.to_string(),
        globs: globs.iter().map(|g| g.to_string()).collect(),
    }
}

/// The built-in rules, in priority order (the order is part of the JSON contract).
pub fn builtin_rules() -> Vec<Rule> {
    let stems = CUDA_LIB_STEMS.join(",");
    let cuda_libs = [
        format!("**/lib{{{stems}}}.so*"),
        format!("**/lib{{{stems}}}[._-]*.so*"),
        "/usr/local/cuda*/**/lib*.so*".to_string(),
        "**/site-packages/nvidia/**/lib*.so*".to_string(),
        "**/dist-packages/nvidia/**/lib*.so*".to_string(),
    ];
    let cuda_libs: Vec<&str> = cuda_libs.iter().map(String::as_str).collect();
    vec![
        rule(
            "pip-cache",
            &["**/.cache/pip/**", "**/.cache/uv/**", "/tmp/pip-*/**"],
        ),
        rule(
            "conda-pkgs",
            &[
                "/opt/conda/pkgs/**",
                "**/miniconda3/pkgs/**",
                "**/miniforge3/pkgs/**",
                "**/mambaforge/pkgs/**",
                "**/anaconda3/pkgs/**",
                "**/micromamba/pkgs/**",
            ],
        ),
        rule("apt-cache", &["/var/lib/apt/lists/**", "/var/cache/apt/**"]),
        rule(
            "model-cache",
            &["**/.cache/huggingface/**", "**/.cache/torch/**"],
        ),
        rule(
            "nsight",
            &["**/nsight-compute*/**", "**/nsight-systems*/**"],
        ),
        rule(
            "cupti",
            &[
                "**/extras/CUPTI/**",
                "**/nvidia/cuda_cupti/**",
                "**/libcupti*",
                "**/libnvperf_*",
                "**/libpcsamplingutil*",
            ],
        ),
        rule("headers", &["**/include/**", "**/*.{h,hh,hpp,hxx,cuh,inl}"]),
        rule("static-libs", &["**/*.a"]),
        rule("cuda-libs", &cuda_libs),
        rule(
            "cuda-tools",
            &[
                "/usr/local/cuda*/bin/**",
                "/usr/local/cuda*/nvvm/**",
                "**/nvidia/cuda_nvcc/**",
            ],
        ),
        rule("python-bytecode", &["**/__pycache__/**", "**/*.pyc"]),
        rule(
            "docs",
            &[
                "/usr/share/doc/**",
                "/usr/share/man/**",
                "/usr/share/info/**",
            ],
        ),
        rule(OTHER, &[]),
    ]
}

/// A compiled rule table.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    set: GlobSet,
    /// Maps a glob's index in `set` to its rule's index.
    owner: Vec<u8>,
}

/// A user rule from `--rules FILE.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRule {
    name: String,
    globs: Vec<String>,
    /// 1-based position in the table; default: just before `other`.
    position: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRules {
    #[serde(default)]
    rule: Vec<UserRule>,
}

impl Rules {
    /// The built-in table, compiled.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> Rules {
        Rules::compile(builtin_rules()).expect("invariant: built-in globs compile")
    }

    /// Compiles rules; the last one must be `other`.
    pub fn compile(rules: Vec<Rule>) -> Result<Rules> {
        if rules.len() > 255 {
            return Err(Error::Usage(
                "at most 255 category rules are supported".into(),
            ));
        }
        let mut b = GlobSetBuilder::new();
        let mut owner = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            for g in &r.globs {
                let glob = GlobBuilder::new(g)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| {
                        Error::Usage(format!("invalid glob '{g}' in rule '{}': {e}", r.name))
                    })?;
                b.add(glob);
                owner.push(i as u8);
            }
        }
        let set = b
            .build()
            .map_err(|e| Error::Usage(format!("cannot compile category rules: {e}")))?;
        Ok(Rules { rules, set, owner })
    }

    /// The built-in table with a user's TOML rules applied.
    ///
    /// A rule whose name exists replaces that rule's globs (and moves it when a
    /// `position` is given); a new name is inserted at `position` (1-based) or
    /// just before `other`.
    pub fn with_user_file(text: &str, file: &str) -> Result<Rules> {
        let user: UserRules = toml::from_str(text)
            .map_err(|e| Error::Usage(format!("'{file}': {}", e.to_string().trim())))?;
        let mut rules = builtin_rules();
        for u in user.rule {
            if u.name == OTHER {
                return Err(Error::Usage(format!(
                    "'{file}': rule 'other' is the catch-all and takes no globs"
                )));
            }
            let existing = rules.iter().position(|r| r.name == u.name);
            let new = Rule {
                name: u.name,
                globs: u.globs,
            };
            let default_pos = match existing {
                Some(i) => i,
                None => rules.len() - 1,
            };
            if let Some(i) = existing {
                rules.remove(i);
            }
            let pos = u
                .position
                .map(|p| p.saturating_sub(1))
                .unwrap_or(default_pos)
                .min(rules.len() - 1);
            rules.insert(pos, new);
        }
        Rules::compile(rules)
    }

    /// Category index of an image path.
    pub fn classify(&self, path: &str) -> u8 {
        let cand = Candidate::new(path);
        let mut best = (self.rules.len() - 1) as u8;
        for i in self.set.matches_candidate(&cand) {
            best = best.min(self.owner[i]);
        }
        best
    }

    /// The rules in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Category names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Name of a category index.
    pub fn name(&self, index: u8) -> &str {
        self.rules
            .get(usize::from(index))
            .map(|r| r.name.as_str())
            .unwrap_or(OTHER)
    }

    /// Index of a category name.
    pub fn index_of(&self, name: &str) -> Option<u8> {
        self.rules
            .iter()
            .position(|r| r.name == name)
            .map(|i| i as u8)
    }

    /// The table as text, for `mlsize rules`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, r) in self.rules.iter().enumerate() {
            let globs = if r.globs.is_empty() {
                "(everything else)".to_string()
            } else {
                r.globs.join("  ")
            };
            let _ = writeln!(out, "{:>2}  {:<16} {globs}", i + 1, r.name);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(path: &str) -> String {
        let r = Rules::builtin();
        r.name(r.classify(path)).to_string()
    }

    #[test]
    fn classifies_real_paths() {
        let cases = [
            // pip / uv caches
            (
                "/root/.cache/pip/http-v2/a/b/c/d/e/0123abcd.body",
                "pip-cache",
            ),
            (
                "/home/app/.cache/pip/wheels/ab/cd/torch-2.5.1-cp311-linux_x86_64.whl",
                "pip-cache",
            ),
            (
                "/root/.cache/uv/archive-v0/xyz/torch/lib/libtorch_cuda.so",
                "pip-cache",
            ),
            ("/tmp/pip-install-abc123/torch/setup.py", "pip-cache"),
            ("/tmp/pip-req-build-x1/README", "pip-cache"),
            ("/tmp/pipx/x", "other"),
            // conda
            (
                "/opt/conda/pkgs/pytorch-2.1.0-py3.10_cuda12.1_cudnn8.9.2_0.tar.bz2",
                "conda-pkgs",
            ),
            (
                "/root/miniconda3/pkgs/cudatoolkit-11.8.0-h6a678d5_0/lib/libcublas.so.11",
                "conda-pkgs",
            ),
            ("/opt/miniforge3/pkgs/cache/497deca9.json", "conda-pkgs"),
            (
                "/opt/conda/lib/python3.10/site-packages/numpy/__init__.py",
                "other",
            ),
            // apt
            (
                "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4",
                "apt-cache",
            ),
            (
                "/var/cache/apt/archives/libc6_2.36-9_amd64.deb",
                "apt-cache",
            ),
            ("/var/cache/apt/pkgcache.bin", "apt-cache"),
            // model caches
            (
                "/root/.cache/huggingface/hub/models--bert-base-uncased/blobs/abc",
                "model-cache",
            ),
            (
                "/root/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth",
                "model-cache",
            ),
            // nsight
            (
                "/opt/nvidia/nsight-compute/2024.1.0/target/linux-desktop-glibc_2_11_3-x64/libTreeLauncherTargetInjection.so",
                "nsight",
            ),
            (
                "/usr/local/cuda-12.4/nsight-systems-2023.4.4/bin/nsys",
                "nsight",
            ),
            ("/usr/local/cuda-12.4/nsight-compute-2024.1.0/ncu", "nsight"),
            // cupti
            (
                "/usr/local/cuda-12.4/extras/CUPTI/lib64/libcupti.so.2024.1.0",
                "cupti",
            ),
            ("/usr/local/cuda-12.4/extras/CUPTI/include/cupti.h", "cupti"),
            (
                "/usr/local/lib/python3.11/site-packages/nvidia/cuda_cupti/lib/libcupti.so.12",
                "cupti",
            ),
            (
                "/usr/local/cuda/targets/x86_64-linux/lib/libcupti.so.12",
                "cupti",
            ),
            (
                "/usr/local/cuda-12.4/targets/x86_64-linux/lib/libnvperf_host.so",
                "cupti",
            ),
            ("/usr/local/cuda/lib64/libpcsamplingutil.so", "cupti"),
            // headers
            (
                "/usr/local/cuda-12.4/targets/x86_64-linux/include/cublas_v2.h",
                "headers",
            ),
            ("/usr/include/x86_64-linux-gnu/bits/types.h", "headers"),
            (
                "/usr/local/lib/python3.11/site-packages/nvidia/cublas/include/cublas_api.h",
                "headers",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/torch/include/ATen/core/Tensor.h",
                "headers",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/torch/include/c10/util/Half-inl.h",
                "headers",
            ),
            ("/opt/src/kernel.cuh", "headers"),
            ("/opt/src/a.hpp", "headers"),
            ("/opt/src/b.inl", "headers"),
            // static libs
            (
                "/usr/local/cuda-12.4/targets/x86_64-linux/lib/libcublas_static.a",
                "static-libs",
            ),
            ("/usr/lib/x86_64-linux-gnu/libc.a", "static-libs"),
            // CUDA libs
            (
                "/usr/local/cuda-12.4/targets/x86_64-linux/lib/libcublasLt.so.12.4.5.8",
                "cuda-libs",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.12",
                "cuda-libs",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn_ops.so.9",
                "cuda-libs",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/torch/lib/libcudart-9335f6a2.so.12",
                "cuda-libs",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc-builtins.so.12.4",
                "cuda-libs",
            ),
            (
                "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15",
                "cuda-libs",
            ),
            ("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", "cuda-libs"),
            ("/usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5", "cuda-libs"),
            (
                "/usr/local/cuda-12.4/targets/x86_64-linux/lib/libOpenCL.so.1",
                "cuda-libs",
            ),
            (
                "/usr/local/lib/python3.11/dist-packages/nvidia/nvjitlink/lib/libnvJitLink.so.12",
                "cuda-libs",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/torch/lib/libtorch_cuda.so",
                "other",
            ),
            ("/usr/lib/x86_64-linux-gnu/libcudaxx.so", "other"),
            // CUDA tools
            ("/usr/local/cuda-12.4/bin/nvcc", "cuda-tools"),
            ("/usr/local/cuda/bin/ptxas", "cuda-tools"),
            ("/usr/local/cuda-12.4/nvvm/bin/cicc", "cuda-tools"),
            (
                "/usr/local/lib/python3.11/site-packages/nvidia/cuda_nvcc/bin/ptxas",
                "cuda-tools",
            ),
            // bytecode
            (
                "/usr/lib/python3.11/__pycache__/os.cpython-311.pyc",
                "python-bytecode",
            ),
            ("/app/old.pyc", "python-bytecode"),
            // docs
            ("/usr/share/doc/libc6/copyright", "docs"),
            ("/usr/share/man/man1/ls.1.gz", "docs"),
            ("/usr/share/info/coreutils.info.gz", "docs"),
            // other
            ("/usr/bin/python3.11", "other"),
            ("/app/main.py", "other"),
        ];
        for (path, want) in cases {
            assert_eq!(cat(path), want, "category of {path}");
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        // A header inside the pip cache is pip cache (rule 1 before rule 7).
        assert_eq!(cat("/root/.cache/pip/include/x.h"), "pip-cache");
        // CUPTI's static library is CUPTI, not static-libs.
        assert_eq!(
            cat("/usr/local/cuda/extras/CUPTI/lib64/libcupti_static.a"),
            "cupti"
        );
    }

    #[test]
    fn user_rules_add_and_override() {
        let text = r#"
[[rule]]
name = "wandb"
globs = ["**/wandb/**"]
position = 1

[[rule]]
name = "docs"
globs = ["/usr/share/doc/**", "/opt/docs/**"]
"#;
        let r = Rules::with_user_file(text, "r.toml").unwrap();
        assert_eq!(r.names().next(), Some("wandb"));
        assert_eq!(r.name(r.classify("/root/.cache/pip/wandb/x")), "wandb");
        assert_eq!(r.name(r.classify("/opt/docs/a.txt")), "docs");
        assert_eq!(r.names().last(), Some(OTHER));
        assert_eq!(r.rules().len(), builtin_rules().len() + 1);
    }

    #[test]
    fn user_rules_errors_name_the_problem() {
        let e = Rules::with_user_file("[[rule]]\nname = \"x\"\nglobz = []\n", "r.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("globz"), "unknown key named: {e}");
        let e = Rules::with_user_file("[[rule]]\nname = \"x\"\nglobs = [\"a[\"]\n", "r.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid glob 'a['"), "{e}");
    }
}
