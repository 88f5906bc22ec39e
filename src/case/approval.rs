//! A plan's approval by its reviewers and the release of its guides for production.
//!
//! Why here and not in `plan`: approving needs the plan measured against its bone (a plan with errors is not signed
//! off), and releasing needs the plan, the printer the guides are built for and what the export records; both are
//! chains of steps, which is this layer's work. The binding itself (what an approval is bound to, whether it still
//! holds) is the plan's own ([`DesignBinding`]).

use super::CaseError;
use crate::catalogue::Catalogue;
use crate::export::Release;
use crate::mesh::Mesh;
use crate::plan::{evaluate, release_approval, Approval, Decision, DesignBinding, Plan, Role};

/// Adds `reviewer`'s review to `plan`, bound to the plan's inputs now ([`DesignBinding::of`]). The plan is measured
/// against `bone` (the plan's own bone, its CT hash already checked by [`super::open_bone`]) first: an approval of a
/// plan with error findings is refused with them (a rejection is always recorded). `at_utc` is the time to record
/// (RFC 3339 UTC; front ends pass the clock's). The caller saves the plan.
pub fn approve<'a>(
    plan: &'a mut Plan,
    bone: &Mesh,
    reviewer: &str,
    role: Role,
    decision: Decision,
    comment: &str,
    at_utc: &str,
) -> Result<&'a Approval, CaseError> {
    if reviewer.trim().is_empty() {
        return Err(CaseError::ApprovalRefused(
            "the reviewer's name is empty; give the name the reviewer signs with (--name)".to_string(),
        ));
    }
    if decision == Decision::Approved {
        let evaluation = evaluate(plan, bone, Catalogue::builtin())
            .map_err(|e| CaseError::ApprovalRefused(format!("the plan cannot be measured on its bone: {e}")))?;
        let errors: Vec<String> = evaluation
            .findings
            .iter()
            .filter(|f| f.severity == crate::finding::Severity::Error)
            .map(|f| format!("{} {}: {}", f.code, f.element, f.message))
            .collect();
        if !errors.is_empty() {
            return Err(CaseError::ApprovalRefused(format!(
                "the plan has {} error finding(s); fix them first (`guidesmith plan show`): {}",
                errors.len(),
                errors.join("; ")
            )));
        }
    }
    let approval = Approval {
        role,
        reviewer: reviewer.trim().to_string(),
        decision,
        at_utc: at_utc.to_string(),
        comment: comment.to_string(),
        binding: DesignBinding::of(plan),
    };
    plan.approvals.push(approval);
    if let Err(e) = plan.validate_inner(None) {
        plan.approvals.pop();
        return Err(CaseError::ApprovalRefused(e.to_string()));
    }
    Ok(plan.approvals.last().expect("just pushed"))
}

/// How the guides of `plan` may be written: released when the latest surgeon's review approves exactly the plan's
/// inputs now and no other printer is asked for; a draft when `draft` is set. Otherwise refused with what to do.
pub fn release_for(plan: &Plan, printer_override: Option<&str>, draft: bool) -> Result<Release, CaseError> {
    let binding = DesignBinding::of(plan);
    if draft {
        return Ok(Release::Draft {
            design_sha256: binding.sha256,
        });
    }
    let approval = release_approval(plan, &binding).map_err(|e| CaseError::NotReleased(e.to_string()))?;
    if let Some(printer) = printer_override {
        if plan.guides.iter().any(|g| g.printer != printer) {
            return Err(CaseError::NotReleased(format!(
                "printer '{printer}' is not the one the surgeon approved the guides for; its tolerances change the \
                 guides: set it in the plan (`guidesmith plan set PLAN guide NAME printer {printer}`) and approve \
                 again, or build with --draft"
            )));
        }
    }
    Ok(Release::Approved {
        surgeon: approval.reviewer.clone(),
        at_utc: approval.at_utc.clone(),
        design_sha256: binding.sha256,
    })
}
