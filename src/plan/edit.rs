//! Edits of a plan, with exact undo and redo.
//!
//! The GUI and the CLI change a plan only through [`Edit`]s, so every change is validated the same way and can be
//! logged (edits serialise to JSON) and undone. Undo is *exact*: an edit records the elements it replaced or
//! removed (and their indices), and undoing puts those very values back, so the plan's JSON after an undo is
//! bit-identical to before the edit. Inverting the float math instead (translating back by `-delta`, rotating by
//! `-angle`) would drift in the last bits, and a plan whose hash changes after "edit, undo" would invalidate its
//! approvals for nothing. Redo works the same way: undoing records what it replaced.
//!
//! An edit is applied to a copy of the plan, which is then validated and only then swapped in, so a failed edit
//! leaves the plan untouched (plans are a few kilobytes; the copy costs nothing next to a click).

use nalgebra::{Point3, Rotation3, Unit, Vector3};
use serde::{Deserialize, Serialize};

use super::error::PlanError;
use super::model::{CaseId, CuttingPlane, DrillTrajectory, GuideSpec, Landmark, Plan, Structure};
use crate::catalogue::Catalogue;

/// The kinds of named elements an edit can address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementKind {
    /// A [`Landmark`].
    Landmark,
    /// A [`Structure`].
    Structure,
    /// A [`CuttingPlane`].
    Plane,
    /// A [`DrillTrajectory`].
    Drill,
    /// A [`GuideSpec`].
    Guide,
}

impl ElementKind {
    /// Singular name used in messages (`plane`).
    pub fn name(self) -> &'static str {
        match self {
            ElementKind::Landmark => "landmark",
            ElementKind::Structure => "structure",
            ElementKind::Plane => "plane",
            ElementKind::Drill => "drill",
            ElementKind::Guide => "guide",
        }
    }

    /// The plan field holding elements of this kind (`planes`), as in JSON paths.
    pub fn list_name(self) -> &'static str {
        match self {
            ElementKind::Landmark => "landmarks",
            ElementKind::Structure => "structures",
            ElementKind::Plane => "planes",
            ElementKind::Drill => "drills",
            ElementKind::Guide => "guides",
        }
    }
}

/// One named element of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Element {
    /// A landmark.
    Landmark(Landmark),
    /// A structure to protect.
    Structure(Structure),
    /// A cutting plane.
    Plane(CuttingPlane),
    /// A drill trajectory.
    Drill(DrillTrajectory),
    /// A guide.
    Guide(GuideSpec),
}

/// A change to a plan. Serialises as `{"translate": {"kind": "plane", "name": "...", "delta_mm": [...]}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Edit {
    /// Appends an element; its direction vectors are normalised.
    Add(Element),
    /// Removes an element; a plane or drill still referenced by a guide cannot be removed.
    Remove {
        /// Kind of the element.
        kind: ElementKind,
        /// Its name.
        name: String,
    },
    /// Moves every point of an element by `delta_mm` (directions are unchanged).
    Translate {
        /// Kind of the element.
        kind: ElementKind,
        /// Its name.
        name: String,
        /// Offset, patient LPS mm.
        delta_mm: [f64; 3],
    },
    /// Rotates an element's points about `pivot_mm` and its directions, by `angle_deg` about `axis`
    /// (right-handed).
    Rotate {
        /// Kind of the element.
        kind: ElementKind,
        /// Its name.
        name: String,
        /// Rotation axis (any non-zero length).
        axis: [f64; 3],
        /// Angle, degrees, counter-clockwise looking down the axis.
        angle_deg: f64,
        /// Fixed point, patient LPS mm; `None` = the element's own point (plane point, drill entry, landmark,
        /// first point of a structure or of a guide's footprint).
        #[serde(deserialize_with = "super::model::present")]
        pivot_mm: Option<[f64; 3]>,
    },
    /// Replaces one field of an element through its JSON form. `field` is a field name (`blade_thickness_mm`,
    /// `normal`, `name`, `screw_system`) or a dotted path into a map (`parameters.pad_thickness_mm`; a `null`
    /// value there removes the key). Renaming a plane or drill updates the guides that reference it; a direction
    /// field is normalised.
    Set {
        /// Kind of the element.
        kind: ElementKind,
        /// Its name.
        name: String,
        /// The field.
        field: String,
        /// The new value, as it would appear in the plan's JSON.
        value: serde_json::Value,
    },
    /// Changes the case ID.
    SetCaseId(CaseId),
    /// Replaces the reconstruction (`None` removes it) and with it the guides on its donor, as one edit: a proposal,
    /// or its settings changed and the segments laid out again. Every guide on the donor is removed; `donor_guide`,
    /// when given, is appended.
    SetReconstruction {
        /// The new reconstruction.
        #[serde(deserialize_with = "super::model::present")]
        reconstruction: Option<Box<super::Reconstruction>>,
        /// The guide on the new donor.
        #[serde(deserialize_with = "super::model::present")]
        donor_guide: Option<Box<super::GuideSpec>>,
    },
}

/// What an applied edit needs to be undone exactly; produced by [`Plan::apply`] and by [`Undo::apply_to`] (which
/// returns the record that redoes what it undid).
#[derive(Clone, Debug, PartialEq)]
pub struct Undo {
    /// Applied in order.
    steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    /// Put `element` back at `index` of its list.
    Insert { index: usize, element: Element },
    /// Take the element at `index` of the `kind` list out.
    Remove { kind: ElementKind, index: usize },
    /// Put `element` in place of the element at `index` of its list.
    Replace { index: usize, element: Element },
    /// Put the case ID back.
    CaseId(CaseId),
    /// Put the reconstruction back.
    Reconstruction(Option<Box<super::Reconstruction>>),
}

impl Element {
    /// The element's kind.
    pub fn kind(&self) -> ElementKind {
        match self {
            Element::Landmark(_) => ElementKind::Landmark,
            Element::Structure(_) => ElementKind::Structure,
            Element::Plane(_) => ElementKind::Plane,
            Element::Drill(_) => ElementKind::Drill,
            Element::Guide(_) => ElementKind::Guide,
        }
    }

    /// The element's name.
    pub fn name(&self) -> &str {
        match self {
            Element::Landmark(e) => &e.name,
            Element::Structure(e) => &e.name,
            Element::Plane(e) => &e.name,
            Element::Drill(e) => &e.name,
            Element::Guide(e) => &e.name,
        }
    }

    /// Every position of the element, mm (what a translation moves).
    fn points_mut(&mut self) -> Vec<&mut [f64; 3]> {
        match self {
            Element::Landmark(e) => vec![&mut e.point_mm],
            Element::Structure(e) => e.points_mm.iter_mut().collect(),
            Element::Plane(e) => vec![&mut e.point_mm],
            Element::Drill(e) => vec![&mut e.entry_mm],
            Element::Guide(e) => e.footprint.outline_mm.iter_mut().collect(),
        }
    }

    /// Every direction of the element (what a rotation turns besides the points).
    fn directions_mut(&mut self) -> Vec<&mut [f64; 3]> {
        match self {
            Element::Landmark(_) | Element::Structure(_) => Vec::new(),
            Element::Plane(e) => vec![&mut e.normal],
            Element::Drill(e) => vec![&mut e.direction],
            Element::Guide(e) => vec![&mut e.seating_direction],
        }
    }

    /// The default rotation pivot: the element's first point.
    fn own_point(&self) -> Option<[f64; 3]> {
        match self {
            Element::Landmark(e) => Some(e.point_mm),
            Element::Structure(e) => e.points_mm.first().copied(),
            Element::Plane(e) => Some(e.point_mm),
            Element::Drill(e) => Some(e.entry_mm),
            Element::Guide(e) => e.footprint.outline_mm.first().copied(),
        }
    }

    /// The name of this element's direction field, if it has one.
    fn direction_field(kind: ElementKind) -> Option<&'static str> {
        match kind {
            ElementKind::Landmark | ElementKind::Structure => None,
            ElementKind::Plane => Some("normal"),
            ElementKind::Drill => Some("direction"),
            ElementKind::Guide => Some("seating_direction"),
        }
    }

    /// The element's JSON form (the object inside the kind tag).
    fn to_value(&self) -> serde_json::Value {
        let v = match self {
            Element::Landmark(e) => serde_json::to_value(e),
            Element::Structure(e) => serde_json::to_value(e),
            Element::Plane(e) => serde_json::to_value(e),
            Element::Drill(e) => serde_json::to_value(e),
            Element::Guide(e) => serde_json::to_value(e),
        };
        v.expect("plan elements serialise infallibly: plain structs with string map keys")
    }

    /// An element of `kind` from its JSON form; errors carry the path inside the element.
    fn from_value(kind: ElementKind, value: serde_json::Value) -> Result<Element, (String, String)> {
        fn de<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, (String, String)> {
            serde_path_to_error::deserialize(value).map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
        }
        Ok(match kind {
            ElementKind::Landmark => Element::Landmark(de(value)?),
            ElementKind::Structure => Element::Structure(de(value)?),
            ElementKind::Plane => Element::Plane(de(value)?),
            ElementKind::Drill => Element::Drill(de(value)?),
            ElementKind::Guide => Element::Guide(de(value)?),
        })
    }
}

/// `v / |v|`, or `v` unchanged when it has no direction (zero or non-finite), which validation then reports with
/// its path.
fn normalised(v: [f64; 3]) -> [f64; 3] {
    let n = Vector3::from(v).norm();
    if n.is_finite() && n > 0.0 {
        [v[0] / n, v[1] / n, v[2] / n]
    } else {
        v
    }
}

impl Plan {
    /// Applies `edit` (validating against the built-in screw catalogue) and returns what undoes it. On error the
    /// plan is unchanged.
    pub fn apply(&mut self, edit: Edit) -> Result<Undo, PlanError> {
        self.apply_with(edit, Catalogue::builtin())
    }

    /// Applies `edit`, validating against `catalogue`; on error the plan is unchanged.
    pub fn apply_with(&mut self, edit: Edit, catalogue: &Catalogue) -> Result<Undo, PlanError> {
        let mut next = self.clone();
        let steps = next.perform(edit)?;
        next.validate_with(catalogue)?;
        *self = next;
        Ok(Undo { steps })
    }

    /// Carries out an edit in place, returning the undo steps; the caller validates.
    fn perform(&mut self, edit: Edit) -> Result<Vec<Step>, PlanError> {
        match edit {
            Edit::Add(mut element) => {
                for d in element.directions_mut() {
                    *d = normalised(*d);
                }
                let kind = element.kind();
                let index = self.len(kind);
                self.insert(index, element);
                Ok(vec![Step::Remove { kind, index }])
            }
            Edit::Remove { kind, name } => {
                let index = self.index_of(kind, &name)?;
                if let Some(guide) = self.guide_using(kind, &name) {
                    return Err(PlanError::InUse {
                        kind: kind.name(),
                        name,
                        guide: guide.to_string(),
                    });
                }
                let element = self.remove(kind, index);
                Ok(vec![Step::Insert { index, element }])
            }
            Edit::Translate { kind, name, delta_mm } => {
                if !delta_mm.iter().all(|v| v.is_finite()) {
                    return Err(PlanError::InvalidEdit {
                        reason: format!("translation {delta_mm:?} mm is not finite"),
                    });
                }
                let index = self.index_of(kind, &name)?;
                let mut element = self.get(kind, index);
                for p in element.points_mut() {
                    for a in 0..3 {
                        p[a] += delta_mm[a];
                    }
                }
                Ok(vec![self.replace(index, element)])
            }
            Edit::Rotate {
                kind,
                name,
                axis,
                angle_deg,
                pivot_mm,
            } => {
                let axis_v = Vector3::from(axis);
                let axis_len = axis_v.norm();
                if !(axis_len.is_finite() && axis_len > 0.0 && angle_deg.is_finite()) {
                    return Err(PlanError::InvalidEdit {
                        reason: format!(
                            "rotation by {angle_deg} deg about {axis:?} needs a finite angle and a non-zero axis"
                        ),
                    });
                }
                if let Some(p) = pivot_mm.filter(|p| !p.iter().all(|v| v.is_finite())) {
                    return Err(PlanError::InvalidEdit {
                        reason: format!("rotation pivot {p:?} mm is not finite"),
                    });
                }
                let index = self.index_of(kind, &name)?;
                let mut element = self.get(kind, index);
                let pivot = Point3::from(pivot_mm.or(element.own_point()).unwrap_or([0.0; 3]));
                let rotation =
                    Rotation3::from_axis_angle(&Unit::new_unchecked(axis_v / axis_len), angle_deg.to_radians());
                for p in element.points_mut() {
                    *p = (pivot + rotation * (Point3::from(*p) - pivot)).into();
                }
                for d in element.directions_mut() {
                    *d = normalised((rotation * Vector3::from(*d)).into());
                }
                Ok(vec![self.replace(index, element)])
            }
            Edit::Set {
                kind,
                name,
                field,
                value,
            } => self.set_field(kind, &name, &field, value),
            Edit::SetCaseId(case_id) => Ok(vec![Step::CaseId(std::mem::replace(&mut self.case_id, case_id))]),
            Edit::SetReconstruction {
                reconstruction,
                donor_guide,
            } => {
                // The old donor guides out, last first so the indices hold; put back lowest first.
                let on_donor: Vec<usize> = (0..self.guides.len())
                    .filter(|&i| self.guides[i].bone == super::GuideBone::Donor)
                    .collect();
                let mut put_back = Vec::with_capacity(on_donor.len());
                for &index in on_donor.iter().rev() {
                    let element = self.remove(ElementKind::Guide, index);
                    put_back.push(Step::Insert { index, element });
                }
                put_back.reverse();
                let old = std::mem::replace(&mut self.reconstruction, reconstruction.map(|b| *b));
                let mut steps = Vec::with_capacity(put_back.len() + 2);
                if let Some(g) = donor_guide {
                    let index = self.len(ElementKind::Guide);
                    self.insert(index, Element::Guide(*g));
                    steps.push(Step::Remove {
                        kind: ElementKind::Guide,
                        index,
                    });
                }
                steps.push(Step::Reconstruction(old.map(Box::new)));
                steps.extend(put_back);
                Ok(steps)
            }
        }
    }

    fn set_field(
        &mut self,
        kind: ElementKind,
        name: &str,
        field: &str,
        value: serde_json::Value,
    ) -> Result<Vec<Step>, PlanError> {
        let index = self.index_of(kind, name)?;
        let mut json = self.get(kind, index).to_value();
        let unknown = |object: &serde_json::Map<String, serde_json::Value>| PlanError::UnknownField {
            kind: kind.name(),
            name: name.to_string(),
            field: field.to_string(),
            valid: object.keys().cloned().collect::<Vec<_>>().join(", "),
        };
        let segments: Vec<&str> = field.split('.').collect();
        let Some((last, parents)) = segments.split_last() else {
            return Err(PlanError::InvalidEdit {
                reason: "empty field name".to_string(),
            });
        };
        let serde_json::Value::Object(top) = &mut json else {
            return Err(PlanError::InvalidEdit {
                reason: format!("{} '{name}' does not serialise as a JSON object", kind.name()),
            });
        };
        if !top.contains_key(segments[0]) {
            return Err(unknown(top));
        }
        let mut object = top;
        for (depth, segment) in parents.iter().enumerate() {
            match object.get_mut(*segment) {
                Some(serde_json::Value::Object(inner)) => object = inner,
                _ => {
                    return Err(PlanError::InvalidEdit {
                        reason: format!(
                            "{} '{name}': '{}' is not a map, so '{field}' cannot be set",
                            kind.name(),
                            segments[..=depth].join(".")
                        ),
                    })
                }
            }
        }
        if value.is_null() && !parents.is_empty() {
            object.remove(*last);
        } else {
            object.insert((*last).to_string(), value);
        }
        let mut element = Element::from_value(kind, json).map_err(|(path, reason)| {
            let inner = if path == "." { String::new() } else { format!(".{path}") };
            PlanError::invalid(format!("{}[{index}]{inner}", kind.list_name()), reason)
        })?;
        if Element::direction_field(kind) == Some(field) {
            for d in element.directions_mut() {
                *d = normalised(*d);
            }
        }
        let new_name = element.name().to_string();
        let mut steps = vec![self.replace(index, element)];
        if new_name != name && matches!(kind, ElementKind::Plane | ElementKind::Drill) {
            for g in 0..self.guides.len() {
                let mut guide = self.guides[g].clone();
                let refs = if kind == ElementKind::Plane {
                    &mut guide.planes
                } else {
                    &mut guide.drills
                };
                let mut changed = false;
                for r in refs.iter_mut().filter(|r| *r == name) {
                    r.clone_from(&new_name);
                    changed = true;
                }
                if changed {
                    steps.push(self.replace(g, Element::Guide(guide)));
                }
            }
        }
        steps.reverse();
        Ok(steps)
    }

    /// Names of the `kind` elements, in order.
    pub fn names(&self, kind: ElementKind) -> Vec<&str> {
        match kind {
            ElementKind::Landmark => self.landmarks.iter().map(|e| e.name.as_str()).collect(),
            ElementKind::Structure => self.structures.iter().map(|e| e.name.as_str()).collect(),
            ElementKind::Plane => self.planes.iter().map(|e| e.name.as_str()).collect(),
            ElementKind::Drill => self.drills.iter().map(|e| e.name.as_str()).collect(),
            ElementKind::Guide => self.guides.iter().map(|e| e.name.as_str()).collect(),
        }
    }

    /// Index of the `kind` element called `name`, or an error listing the names of that kind.
    pub fn index_of(&self, kind: ElementKind, name: &str) -> Result<usize, PlanError> {
        let names = self.names(kind);
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| PlanError::NoSuchElement {
                kind: kind.name(),
                name: name.to_string(),
                known: if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
            })
    }

    /// The first guide referencing the plane or drill `name`.
    fn guide_using(&self, kind: ElementKind, name: &str) -> Option<&str> {
        self.guides
            .iter()
            .find(|g| match kind {
                ElementKind::Plane => g.planes.iter().any(|p| p == name),
                ElementKind::Drill => g.drills.iter().any(|d| d == name),
                _ => false,
            })
            .map(|g| g.name.as_str())
    }

    fn len(&self, kind: ElementKind) -> usize {
        match kind {
            ElementKind::Landmark => self.landmarks.len(),
            ElementKind::Structure => self.structures.len(),
            ElementKind::Plane => self.planes.len(),
            ElementKind::Drill => self.drills.len(),
            ElementKind::Guide => self.guides.len(),
        }
    }

    /// A copy of the element at `index` (which the caller found with `index_of`).
    fn get(&self, kind: ElementKind, index: usize) -> Element {
        match kind {
            ElementKind::Landmark => Element::Landmark(self.landmarks[index].clone()),
            ElementKind::Structure => Element::Structure(self.structures[index].clone()),
            ElementKind::Plane => Element::Plane(self.planes[index].clone()),
            ElementKind::Drill => Element::Drill(self.drills[index].clone()),
            ElementKind::Guide => Element::Guide(self.guides[index].clone()),
        }
    }

    /// Inserts at `index <= len`.
    fn insert(&mut self, index: usize, element: Element) {
        match element {
            Element::Landmark(e) => self.landmarks.insert(index, e),
            Element::Structure(e) => self.structures.insert(index, e),
            Element::Plane(e) => self.planes.insert(index, e),
            Element::Drill(e) => self.drills.insert(index, e),
            Element::Guide(e) => self.guides.insert(index, e),
        }
    }

    /// Removes at `index < len`.
    fn remove(&mut self, kind: ElementKind, index: usize) -> Element {
        match kind {
            ElementKind::Landmark => Element::Landmark(self.landmarks.remove(index)),
            ElementKind::Structure => Element::Structure(self.structures.remove(index)),
            ElementKind::Plane => Element::Plane(self.planes.remove(index)),
            ElementKind::Drill => Element::Drill(self.drills.remove(index)),
            ElementKind::Guide => Element::Guide(self.guides.remove(index)),
        }
    }

    /// Replaces the element at `index < len`, returning the step that puts the old one back.
    fn replace(&mut self, index: usize, element: Element) -> Step {
        let old = match element {
            Element::Landmark(e) => Element::Landmark(std::mem::replace(&mut self.landmarks[index], e)),
            Element::Structure(e) => Element::Structure(std::mem::replace(&mut self.structures[index], e)),
            Element::Plane(e) => Element::Plane(std::mem::replace(&mut self.planes[index], e)),
            Element::Drill(e) => Element::Drill(std::mem::replace(&mut self.drills[index], e)),
            Element::Guide(e) => Element::Guide(std::mem::replace(&mut self.guides[index], e)),
        };
        Step::Replace { index, element: old }
    }
}

impl Undo {
    /// Undoes the edit this record came from, and returns the record that redoes it. `plan` must be in the state
    /// the edit left it in (as [`History`] guarantees); otherwise the result is an error and `plan` is unchanged.
    pub fn apply_to(&self, plan: &mut Plan) -> Result<Undo, PlanError> {
        let mut next = plan.clone();
        let mut inverse = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            inverse.push(next.restore(step)?);
        }
        inverse.reverse();
        next.validate_inner(None)?;
        *plan = next;
        Ok(Undo { steps: inverse })
    }
}

impl Plan {
    /// Carries out one undo step, returning its inverse.
    fn restore(&mut self, step: &Step) -> Result<Step, PlanError> {
        let out_of_range = |kind: ElementKind, index: usize, len: usize| PlanError::UndoMismatch {
            reason: format!("{}[{index}] does not exist ({len} elements)", kind.list_name()),
        };
        match step {
            Step::Insert { index, element } => {
                let (kind, len) = (element.kind(), self.len(element.kind()));
                if *index > len {
                    return Err(out_of_range(kind, *index, len));
                }
                self.insert(*index, element.clone());
                Ok(Step::Remove { kind, index: *index })
            }
            Step::Remove { kind, index } => {
                let len = self.len(*kind);
                if *index >= len {
                    return Err(out_of_range(*kind, *index, len));
                }
                Ok(Step::Insert {
                    index: *index,
                    element: self.remove(*kind, *index),
                })
            }
            Step::Replace { index, element } => {
                let (kind, len) = (element.kind(), self.len(element.kind()));
                if *index >= len {
                    return Err(out_of_range(kind, *index, len));
                }
                Ok(self.replace(*index, element.clone()))
            }
            Step::CaseId(id) => Ok(Step::CaseId(std::mem::replace(&mut self.case_id, id.clone()))),
            Step::Reconstruction(r) => Ok(Step::Reconstruction(
                std::mem::replace(&mut self.reconstruction, r.clone().map(|b| *b)).map(Box::new),
            )),
        }
    }
}

/// Undo and redo stacks over one plan. A new edit clears the redo stack.
#[derive(Clone, Debug, Default)]
pub struct History {
    done: Vec<Undo>,
    undone: Vec<Undo>,
}

impl History {
    /// Empty stacks.
    pub fn new() -> Self {
        History::default()
    }

    /// Applies `edit` to `plan` (built-in screw catalogue) and records it; on error nothing changes.
    pub fn apply(&mut self, plan: &mut Plan, edit: Edit) -> Result<(), PlanError> {
        self.apply_with(plan, edit, Catalogue::builtin())
    }

    /// Applies `edit` to `plan`, validating against `catalogue`, and records it; on error nothing changes.
    pub fn apply_with(&mut self, plan: &mut Plan, edit: Edit, catalogue: &Catalogue) -> Result<(), PlanError> {
        let undo = plan.apply_with(edit, catalogue)?;
        self.done.push(undo);
        self.undone.clear();
        Ok(())
    }

    /// Undoes the last edit; `Ok(false)` when there is none.
    pub fn undo(&mut self, plan: &mut Plan) -> Result<bool, PlanError> {
        Self::shift(&mut self.done, &mut self.undone, plan)
    }

    /// Redoes the last undone edit; `Ok(false)` when there is none.
    pub fn redo(&mut self, plan: &mut Plan) -> Result<bool, PlanError> {
        Self::shift(&mut self.undone, &mut self.done, plan)
    }

    /// Whether [`History::undo`] has something to undo.
    pub fn can_undo(&self) -> bool {
        !self.done.is_empty()
    }

    /// How many edits [`History::undo`] can undo.
    pub fn undo_len(&self) -> usize {
        self.done.len()
    }

    /// Whether [`History::redo`] has something to redo.
    pub fn can_redo(&self) -> bool {
        !self.undone.is_empty()
    }

    /// Forgets both stacks (after loading another plan).
    pub fn clear(&mut self) {
        self.done.clear();
        self.undone.clear();
    }

    /// Applies the top record of `from` and pushes its inverse onto `to`; on error `from` keeps the record.
    fn shift(from: &mut Vec<Undo>, to: &mut Vec<Undo>, plan: &mut Plan) -> Result<bool, PlanError> {
        let Some(record) = from.last() else {
            return Ok(false);
        };
        let inverse = record.apply_to(plan)?;
        from.pop();
        to.push(inverse);
        Ok(true)
    }
}
