//! Approvals bound to everything that determines a plan's guides, and whether an approval still holds.
//!
//! Why a binding and not just the plan's hash: a guide is made from the plan, the CT it was planned on, the
//! templates and printer profiles that shape it, the screw catalogue and the software that builds it. A surgeon
//! approves the result of all of them; if any changes after the signature, the guides may change too, so the
//! approval must no longer count. [`DesignBinding`] lists the hash of each input, and its own
//! [`DesignBinding::sha256`] is the SHA-256 of a short canonical text (`docs/APPROVAL.md`) that anyone can recompute
//! from the bundle with `sha256sum`. Comparing the recorded binding with today's says what changed, input by input.
//!
//! Why the plan's content is hashed without its approvals and path hints: approving adds an approval to the plan,
//! which must not invalidate the approvals already there; and the CT's folder or a bone model's file path is a hint
//! for finding the data on one machine (the CT is identified by its volume hash, which is bound), so moving a case to
//! another machine keeps its approvals.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::io::sha256_hex;
use super::model::{present, Approval, Decision, Nullable, Plan, Role};
use crate::template::{builtin_printers_text, BUILTIN_TEMPLATE_FILES};

/// The first line of the canonical binding text; a new line format gets a new version.
pub const BINDING_FORMAT: &str = "guidesmith-design-binding/1";

/// The software that builds the guides, as bound: name and version.
pub const SOFTWARE: &str = concat!("guidesmith ", env!("CARGO_PKG_VERSION"));

/// One template as bound: its version and the SHA-256 of its file's text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateHash {
    /// The template's `version`.
    pub version: String,
    /// SHA-256 of the template file's bytes, 64 lower-case hex digits.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
}

/// The hash of every input that determines a plan's guides (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DesignBinding {
    /// SHA-256 of [`DesignBinding::canonical_text`]: the one number an approval is bound to.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
    /// [`plan_content_sha256`] of the plan.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub plan_sha256: String,
    /// The CT volume's hash as the plan records it (`ct.volume_sha256`); `None` when the bone comes from STL models.
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Nullable<String>")]
    pub ct_volume_sha256: Option<String>,
    /// Every template the plan's guides name, by name.
    pub templates: BTreeMap<String, TemplateHash>,
    /// SHA-256 of the printer profiles' file (`templates/printers.toml`).
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub printers_sha256: String,
    /// SHA-256 of the screw catalogue's file (`templates/screws.toml`).
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub screws_sha256: String,
    /// The software and its version ([`SOFTWARE`]).
    pub software: String,
    /// SHA-256 of each part of the plan's content (`case_id`, `ct`, `bone`, `planes/NAME`, `drills/NAME`, ...), so a
    /// stale approval can say which element changed. An explanation only: not part of the canonical text, so it
    /// cannot make an approval current (the plan's content hash decides that).
    pub plan_parts: BTreeMap<String, String>,
}

impl DesignBinding {
    /// The binding of `plan` with the inputs this build of the software carries (its templates, printer profiles
    /// and screw catalogue). A template the plan names that does not exist is left out (the plan's evaluation
    /// refuses it).
    pub fn of(plan: &Plan) -> DesignBinding {
        let mut templates = BTreeMap::new();
        for guide in &plan.guides {
            if let Some(t) = builtin_template_hash(&guide.template) {
                templates.insert(guide.template.clone(), t);
            }
        }
        let mut binding = DesignBinding::new(
            plan_content_sha256(plan),
            plan.ct.as_ref().map(|ct| ct.volume_sha256.clone()),
            templates,
            sha256_hex(builtin_printers_text().as_bytes()),
            sha256_hex(crate::catalogue::BUILTIN_SCREWS_TOML.as_bytes()),
            SOFTWARE.to_string(),
        );
        binding.plan_parts = plan_part_hashes(plan);
        binding
    }

    /// A binding of the given inputs, its [`DesignBinding::sha256`] computed.
    pub fn new(
        plan_sha256: String,
        ct_volume_sha256: Option<String>,
        templates: BTreeMap<String, TemplateHash>,
        printers_sha256: String,
        screws_sha256: String,
        software: String,
    ) -> DesignBinding {
        let mut b = DesignBinding {
            sha256: String::new(),
            plan_sha256,
            ct_volume_sha256,
            templates,
            printers_sha256,
            screws_sha256,
            software,
            plan_parts: BTreeMap::new(),
        };
        b.sha256 = sha256_hex(b.canonical_text().as_bytes());
        b
    }

    /// The canonical text whose SHA-256 is [`DesignBinding::sha256`]: one input per line, `\n` after each line,
    /// templates sorted by name (`docs/APPROVAL.md`).
    pub fn canonical_text(&self) -> String {
        let mut text = format!("{BINDING_FORMAT}\nplan {}\n", self.plan_sha256);
        text.push_str(&format!("ct {}\n", self.ct_volume_sha256.as_deref().unwrap_or("none")));
        for (name, t) in &self.templates {
            text.push_str(&format!("template {name} {} {}\n", t.version, t.sha256));
        }
        text.push_str(&format!("printers {}\n", self.printers_sha256));
        text.push_str(&format!("screws {}\n", self.screws_sha256));
        text.push_str(&format!("software {}\n", self.software));
        text
    }

    /// Whether the recorded hash is the hash of the recorded inputs (false for a binding edited by hand).
    pub fn is_consistent(&self) -> bool {
        sha256_hex(self.canonical_text().as_bytes()) == self.sha256
    }

    /// What differs from `recorded` (an approval's binding) in this binding (today's), in words, one entry per
    /// input; empty when nothing does.
    pub fn changes_since(&self, recorded: &DesignBinding) -> Vec<String> {
        let short = |h: &str| h.chars().take(12).collect::<String>();
        let mut out = Vec::new();
        if !recorded.is_consistent() {
            out.push("the approval's recorded hash does not match its recorded inputs (edited by hand?)".to_string());
        }
        if recorded.plan_sha256 != self.plan_sha256 {
            let (was, now) = (&recorded.plan_parts, &self.plan_parts);
            let mut parts: Vec<String> = Vec::new();
            for (key, hash) in was {
                match now.get(key) {
                    None => parts.push(format!("{key} removed")),
                    Some(h) if h != hash => parts.push(format!("{key} changed")),
                    Some(_) => {}
                }
            }
            parts.extend(
                now.keys()
                    .filter(|k| !was.contains_key(*k))
                    .map(|k| format!("{k} added")),
            );
            out.push(if parts.is_empty() {
                format!(
                    "the plan changed (content {} -> {})",
                    short(&recorded.plan_sha256),
                    short(&self.plan_sha256)
                )
            } else {
                format!("the plan changed: {}", parts.join(", "))
            });
        }
        if recorded.ct_volume_sha256 != self.ct_volume_sha256 {
            let h = |o: &Option<String>| o.as_deref().map(short).unwrap_or_else(|| "none".to_string());
            out.push(format!(
                "the CT changed (volume {} -> {})",
                h(&recorded.ct_volume_sha256),
                h(&self.ct_volume_sha256)
            ));
        }
        for (name, was) in &recorded.templates {
            match self.templates.get(name) {
                None => out.push(format!("template '{name}' is no longer used or no longer exists")),
                Some(now) if now.version != was.version => out.push(format!(
                    "template '{name}' changed (version {} -> {})",
                    was.version, now.version
                )),
                Some(now) if now.sha256 != was.sha256 => out.push(format!(
                    "template '{name}' changed (its file, version {} unchanged)",
                    now.version
                )),
                Some(_) => {}
            }
        }
        for name in self.templates.keys().filter(|n| !recorded.templates.contains_key(*n)) {
            out.push(format!("template '{name}' is used now and was not"));
        }
        if recorded.printers_sha256 != self.printers_sha256 {
            out.push("the printer profiles changed".to_string());
        }
        if recorded.screws_sha256 != self.screws_sha256 {
            out.push("the screw catalogue changed".to_string());
        }
        if recorded.software != self.software {
            out.push(format!(
                "the software changed ({} -> {})",
                recorded.software, self.software
            ));
        }
        out
    }
}

/// SHA-256 of the plan's canonical JSON with its approvals removed and its hints emptied (the CT's folder and
/// SeriesInstanceUID, the bone models' files): the plan's content as an approval binds it. The CT is bound by its
/// volume hash; the UID only helps find the series, and is not shipped (a UID can be traced to the patient).
pub fn plan_content_sha256(plan: &Plan) -> String {
    sha256_hex(plan_content(plan).to_json().as_bytes())
}

/// The plan's content as an approval binds it: `plan` without its approvals and with its hints emptied.
fn plan_content(plan: &Plan) -> Plan {
    let mut content = plan.clone();
    content.approvals.clear();
    if let Some(ct) = &mut content.ct {
        ct.path.clear();
        ct.series_uid.clear();
    }
    for m in &mut content.bone.models {
        m.path.clear();
    }
    if let Some(r) = &mut content.reconstruction {
        if let Some(ct) = &mut r.donor.ct {
            ct.path.clear();
            ct.series_uid.clear();
        }
        for m in &mut r.donor.bone.models {
            m.path.clear();
        }
    }
    content
}

/// SHA-256 of each part of the plan's content, as [`DesignBinding::plan_parts`] keys them (path hints emptied, as in
/// [`plan_content_sha256`]).
pub fn plan_part_hashes(plan: &Plan) -> BTreeMap<String, String> {
    fn hash<T: Serialize>(v: &T) -> String {
        sha256_hex(serde_json::to_string(v).unwrap_or_default().as_bytes())
    }
    let content = plan_content(plan);
    let mut out = BTreeMap::new();
    out.insert("case_id".to_string(), hash(&content.case_id));
    out.insert("ct".to_string(), hash(&content.ct));
    out.insert("bone".to_string(), hash(&content.bone));
    for l in &plan.landmarks {
        out.insert(format!("landmarks/{}", l.name), hash(l));
    }
    for s in &plan.structures {
        out.insert(format!("structures/{}", s.name), hash(s));
    }
    for p in &plan.planes {
        out.insert(format!("planes/{}", p.name), hash(p));
    }
    for d in &plan.drills {
        out.insert(format!("drills/{}", d.name), hash(d));
    }
    for g in &plan.guides {
        out.insert(format!("guides/{}", g.name), hash(g));
    }
    if let Some(r) = &content.reconstruction {
        out.insert("reconstruction".to_string(), hash(r));
    }
    out
}

/// The built-in template named `name`, as bound; `None` if there is none.
fn builtin_template_hash(name: &str) -> Option<TemplateHash> {
    BUILTIN_TEMPLATE_FILES.iter().find_map(|(file, text)| {
        let t = crate::template::Template::from_toml_str(text, &format!("builtin:{file}")).ok()?;
        (t.name == name).then(|| TemplateHash {
            version: t.version.clone(),
            sha256: sha256_hex(text.as_bytes()),
        })
    })
}

/// An approval's standing against today's binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalState {
    /// Bound to exactly today's inputs.
    Current,
    /// Something changed since; what, in words.
    Stale(Vec<String>),
}

impl Approval {
    /// This approval against `now` (usually [`DesignBinding::of`] the plan).
    pub fn state(&self, now: &DesignBinding) -> ApprovalState {
        let changes = now.changes_since(&self.binding);
        if changes.is_empty() && self.binding.sha256 == now.sha256 {
            ApprovalState::Current
        } else {
            ApprovalState::Stale(changes)
        }
    }
}

/// Why a plan may not be released (built for production).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseRefusal {
    /// No surgeon has approved the plan.
    #[error(
        "the plan has no surgeon's approval; after review run `guidesmith approve PLAN --name NAME --role surgeon`, \
         or build with --draft"
    )]
    NoSurgeonApproval,
    /// The latest surgeon's approval no longer matches the plan's inputs.
    #[error(
        "the surgeon's approval by {reviewer} ({at_utc}) is stale: {}; the plan must be approved again (or built with \
         --draft)",
        changes.join("; ")
    )]
    Stale {
        /// Who approved.
        reviewer: String,
        /// When.
        at_utc: String,
        /// What changed.
        changes: Vec<String>,
    },
    /// The latest surgeon's review rejected the plan.
    #[error("the surgeon {reviewer} rejected the plan ({at_utc}): {comment}")]
    Rejected {
        /// Who rejected it.
        reviewer: String,
        /// When.
        at_utc: String,
        /// Their comment.
        comment: String,
    },
}

/// The surgeon's approval that releases `plan` for production: the latest surgeon's review decides; it must be an
/// approval bound to `now`.
pub fn release_approval<'a>(plan: &'a Plan, now: &DesignBinding) -> Result<&'a Approval, ReleaseRefusal> {
    let latest = plan
        .approvals
        .iter()
        .rev()
        .find(|a| a.role == Role::Surgeon)
        .ok_or(ReleaseRefusal::NoSurgeonApproval)?;
    // A rejection is named as such, stale or not.
    if latest.decision == Decision::Rejected {
        return Err(ReleaseRefusal::Rejected {
            reviewer: latest.reviewer.clone(),
            at_utc: latest.at_utc.clone(),
            comment: latest.comment.clone(),
        });
    }
    if let ApprovalState::Stale(changes) = latest.state(now) {
        return Err(ReleaseRefusal::Stale {
            reviewer: latest.reviewer.clone(),
            at_utc: latest.at_utc.clone(),
            changes,
        });
    }
    match latest.decision {
        Decision::Approved => Ok(latest),
        Decision::Rejected => Err(ReleaseRefusal::Rejected {
            reviewer: latest.reviewer.clone(),
            at_utc: latest.at_utc.clone(),
            comment: latest.comment.clone(),
        }),
    }
}

/// `at_utc` is an RFC 3339 UTC time to the second (`2026-12-07T08:15:00Z`).
pub fn is_utc_time(at_utc: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(at_utc).is_ok_and(|t| t.offset().local_minus_utc() == 0)
        && at_utc.ends_with('Z')
        && at_utc.len() == "2026-12-07T08:15:00Z".len()
        && at_utc.as_bytes()[10] == b'T'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{BoneModelRef, BoneSource, CaseId, CuttingPlane, Footprint, GuideSpec, ResectedSide};

    fn plan() -> Plan {
        let mut plan = Plan::new(
            CaseId::new("C-1").expect("case id"),
            None,
            BoneSource {
                segmentation: None,
                models: vec![BoneModelRef {
                    name: "mandible".into(),
                    path: "/home/engineer/cases/mandible.stl".into(),
                    sha256: "ab".repeat(32),
                }],
            },
        );
        plan.planes.push(CuttingPlane {
            name: "cut".into(),
            point_mm: [0.0, 0.0, 0.0],
            normal: [1.0, 0.0, 0.0],
            blade_thickness_mm: 0.6,
            resected_side: ResectedSide::Positive,
        });
        plan.guides.push(GuideSpec {
            bone: Default::default(),
            name: "g".into(),
            template: "cutting_guide".into(),
            printer: "sla".into(),
            parameters: BTreeMap::new(),
            planes: vec!["cut".into()],
            drills: vec![],
            seating_direction: [0.0, 1.0, 0.0],
            footprint: Footprint {
                outline_mm: vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 1.0]],
            },
            label: None,
        });
        plan
    }

    fn approval(plan: &Plan, role: Role, decision: Decision) -> Approval {
        Approval {
            role,
            reviewer: format!("{} A", role.as_str()),
            decision,
            at_utc: "2026-12-07T08:15:00Z".into(),
            comment: String::new(),
            binding: DesignBinding::of(plan),
        }
    }

    #[test]
    fn the_binding_hash_is_the_sha256_of_its_canonical_text() {
        let b = DesignBinding::of(&plan());
        let text = b.canonical_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], BINDING_FORMAT);
        assert_eq!(lines[1], format!("plan {}", b.plan_sha256));
        assert_eq!(lines[2], "ct none");
        assert!(lines[3].starts_with("template cutting_guide 1."), "{text}");
        assert_eq!(*lines.last().expect("lines"), format!("software {SOFTWARE}"));
        assert!(text.ends_with('\n'));
        assert_eq!(b.sha256, sha256_hex(text.as_bytes()));
        assert!(b.is_consistent());
        // The same inputs, the same binding.
        assert_eq!(DesignBinding::of(&plan()), b);
    }

    #[test]
    fn approvals_and_path_hints_do_not_change_the_binding_but_an_edit_does_and_is_named() {
        let mut p = plan();
        let before = DesignBinding::of(&p);
        p.approvals.push(approval(&p, Role::Engineer, Decision::Approved));
        p.bone.models[0].path = "D:/other/machine/mandible.stl".into();
        assert_eq!(DesignBinding::of(&p).sha256, before.sha256);
        assert_eq!(p.approvals[0].state(&DesignBinding::of(&p)), ApprovalState::Current);

        p.planes[0].point_mm[0] = 0.5;
        let now = DesignBinding::of(&p);
        assert_ne!(now.sha256, before.sha256);
        assert_eq!(
            p.approvals[0].state(&now),
            ApprovalState::Stale(vec!["the plan changed: planes/cut changed".into()])
        );
        p.planes[0].name = "cut-2".into();
        p.guides[0].planes = vec!["cut-2".into()];
        let ApprovalState::Stale(changes) = p.approvals[0].state(&DesignBinding::of(&p)) else {
            panic!("stale expected");
        };
        assert_eq!(
            changes,
            ["the plan changed: guides/g changed, planes/cut removed, planes/cut-2 added"]
        );
    }

    #[test]
    fn a_changed_template_printer_catalogue_ct_or_software_is_named() {
        let p = plan();
        let was = DesignBinding::of(&p);
        let changed = |edit: &dyn Fn(&mut DesignBinding)| {
            let mut b = was.clone();
            edit(&mut b);
            let b = DesignBinding::new(
                b.plan_sha256,
                b.ct_volume_sha256,
                b.templates,
                b.printers_sha256,
                b.screws_sha256,
                b.software,
            );
            assert_ne!(b.sha256, was.sha256);
            b.changes_since(&was)
        };
        let t =
            |b: &mut DesignBinding| b.templates.get_mut("cutting_guide").expect("template").sha256 = "cd".repeat(32);
        assert_eq!(
            changed(&t),
            ["template 'cutting_guide' changed (its file, version 1.1.0 unchanged)"]
        );
        let v =
            |b: &mut DesignBinding| b.templates.get_mut("cutting_guide").expect("template").version = "9.0.0".into();
        assert_eq!(
            changed(&v),
            ["template 'cutting_guide' changed (version 1.1.0 -> 9.0.0)"]
        );
        assert_eq!(
            changed(&|b| b.printers_sha256 = "00".repeat(32)),
            ["the printer profiles changed"]
        );
        assert_eq!(
            changed(&|b| b.screws_sha256 = "00".repeat(32)),
            ["the screw catalogue changed"]
        );
        assert_eq!(
            changed(&|b| b.software = "guidesmith 9.9.9".into()),
            [format!("the software changed ({SOFTWARE} -> guidesmith 9.9.9)")]
        );
        let ct = changed(&|b| b.ct_volume_sha256 = Some("ef".repeat(32)));
        assert_eq!(ct, ["the CT changed (volume none -> efefefefefef)"]);
        // A binding whose recorded hash was edited by hand is never current.
        let mut forged = was.clone();
        forged.software = "guidesmith 9.9.9".into();
        assert!(!forged.is_consistent());
        assert!(was.changes_since(&forged)[0].contains("edited by hand"));
    }

    #[test]
    fn only_the_latest_surgeon_review_bound_to_today_releases() {
        let mut p = plan();
        let now = DesignBinding::of(&p);
        assert_eq!(release_approval(&p, &now), Err(ReleaseRefusal::NoSurgeonApproval));
        p.approvals.push(approval(&p, Role::Engineer, Decision::Approved));
        assert_eq!(release_approval(&p, &now), Err(ReleaseRefusal::NoSurgeonApproval));
        p.approvals.push(approval(&p, Role::Surgeon, Decision::Approved));
        assert_eq!(release_approval(&p, &now).map(|a| a.role), Ok(Role::Surgeon));
        // A later rejection by a surgeon withdraws the release.
        p.approvals.push(approval(&p, Role::Surgeon, Decision::Rejected));
        assert!(matches!(
            release_approval(&p, &now),
            Err(ReleaseRefusal::Rejected { .. })
        ));
        p.approvals.push(approval(&p, Role::Surgeon, Decision::Approved));
        assert!(release_approval(&p, &now).is_ok());
        // Any edit afterwards makes it stale, with what changed.
        p.planes[0].normal = [0.0, 0.0, 1.0];
        let now = DesignBinding::of(&p);
        match release_approval(&p, &now) {
            Err(ReleaseRefusal::Stale { changes, .. }) => assert_eq!(changes, ["the plan changed: planes/cut changed"]),
            other => panic!("stale expected, got {other:?}"),
        }
    }

    #[test]
    fn approval_times_are_utc_to_the_second() {
        assert!(is_utc_time("2026-12-07T08:15:00Z"));
        for bad in [
            "2026-12-07T08:15:00+01:00",
            "2026-12-07 08:15:00Z",
            "2026-12-07T08:15:00.5Z",
            "yesterday",
            "",
        ] {
            assert!(!is_utc_time(bad), "{bad}");
        }
    }
}
