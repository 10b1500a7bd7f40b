//! `image:`: what hoist builds and where it pushes it.

use std::collections::BTreeMap;
use std::path::Path;

use super::fields::keys;
use super::names::{is_platform, is_repository_name, is_tag};
use super::{Decoder, empty_map};
use crate::config::schema::{Builder, Image};
use crate::config::yaml::{Loc, Node};

keys! {
    ImageKeys {
        repository,
        context,
        dockerfile,
        target,
        build_args,
        platform,
        tags,
        builder,
        immutable_tags,
        scan_on_push,
    }
}

impl Decoder {
    /// `image:` (its defaults when `node` is none): the repository defaults to the app's
    /// name, the context to `base_dir`.
    pub(super) fn image(
        &mut self,
        node: Option<&Node>,
        path: &str,
        app: Option<&str>,
        base_dir: &Path,
        root_loc: Loc,
    ) -> Option<Image> {
        let empty = empty_map(root_loc);
        let (f, k) = self.section::<ImageKeys>(node.unwrap_or(&empty), path)?;
        let repository = match k.repository.node {
            Some(n) => self.string(n, &k.repository.path).and_then(|r| {
                self.accept(r, is_repository_name, &k.repository.path, n.loc, |r| {
                    format!(
                        "`{r}` is not a valid ECR repository name (lowercase letters, digits, \
                         and . _ - / separators, 2-256 characters)"
                    )
                })
            }),
            None => app.map(str::to_owned),
        };
        let context = match k.context.node {
            Some(n) => {
                self.origins.context = Some(n.loc);
                self.string(n, &k.context.path).map(|c| base_dir.join(c))
            }
            None => Some(base_dir.to_path_buf()),
        };
        let dockerfile = match k.dockerfile.node {
            Some(n) => {
                self.origins.dockerfile = Some(n.loc);
                self.string(n, &k.dockerfile.path)
            }
            None => Some("Dockerfile".to_owned()),
        };
        let target = k.target.node.and_then(|n| self.string(n, &k.target.path));
        let build_args = match k.build_args.node {
            Some(n) => self
                .text_map(n, &k.build_args.path)
                .into_iter()
                .map(|(name, _, value, _)| (name, value))
                .collect(),
            None => BTreeMap::new(),
        };
        let platform = k.platform.node.and_then(|n| {
            let p = self.string(n, &k.platform.path)?;
            self.accept(p, is_platform, &k.platform.path, n.loc, |p| {
                format!("`{p}` is not a platform (os/arch[/variant], e.g. linux/amd64)")
            })
        });
        let mut tags = Vec::new();
        if let Some(n) = k.tags.node {
            for (i, (tag, loc)) in self.string_list(n, &k.tags.path).into_iter().enumerate() {
                let field = format!("{}[{i}]", k.tags.path);
                tags.extend(self.accept(tag, is_tag, &field, loc, |tag| {
                    format!(
                        "`{tag}` is not a valid image tag (letters, digits, _ . -, at most 128 \
                         characters, not starting with . or -)"
                    )
                }));
            }
        }
        let builder = match k.builder.node {
            None => Some(Builder::Auto),
            Some(n) => self
                .string(n, &k.builder.path)
                .and_then(|b| match b.as_str() {
                    "auto" => Some(Builder::Auto),
                    "buildkit" => Some(Builder::Buildkit),
                    "classic" => Some(Builder::Classic),
                    other => {
                        self.issue(
                            &k.builder.path,
                            n.loc,
                            format!("unknown builder `{other}` (auto, buildkit or classic)"),
                        );
                        None
                    }
                }),
        };
        let immutable_tags = self.flag(&k.immutable_tags);
        let scan_on_push = self.flag(&k.scan_on_push);
        self.finish(f);
        Some(Image {
            builder: builder?,
            immutable_tags,
            scan_on_push,
            repository: repository?,
            context: context?,
            dockerfile: dockerfile?,
            target,
            build_args,
            platform,
            tags,
        })
    }
}
