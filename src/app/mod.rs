//! The desktop application (`guidesmith gui`, feature `gui`): see the CT, segment the bone, and plan in 3D.
//!
//! Why a thin front end: everything that computes is the library's (volume, bone, plan edits and evaluation, the
//! case layer); the application holds the state a user sees, runs long library calls on worker threads
//! ([`jobs`]) and changes the plan only through [`Edit`]s applied by a [`History`], so undo/redo, the JSON document
//! and the CLI stay one model. Part 2 (guide design, review) adds panels and tools to the same state.
//!
//! Layout: menu bar; left panel with the case (CT, series, segmentation, surface); right panel with the plan
//! (elements, numbers, measurements, findings); the centre shows the three slice views and the 3D view (four-up, or
//! one of them alone); the bottom bar shows the job with its progress and Cancel, messages, and what is under the
//! cursor.

mod files;
mod flap;
mod gizmo;
mod guides;
mod jobs;
mod review;
mod slices;
#[cfg(test)]
mod tests;
mod view3d;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use eframe::egui::{self, Color32, RichText};
use guidesmith::bone::{self, BoneModel, SurfaceOptions};
use guidesmith::case;
use guidesmith::catalogue::Catalogue;
use guidesmith::finding::{Finding, Severity};
use guidesmith::measure::BoneQuery;
use guidesmith::mesh::Mesh;
use guidesmith::plan::{
    BoneSource, CaseId, CtReference, CuttingPlane, DrillTrajectory, Edit, Element, ElementKind, EvaluateOptions,
    Evaluation, History, Plan, ResectedSide, Segmentation,
};
use guidesmith::progress::Progress;
use guidesmith::segment::{BoxMm, HuRange, Keep, Mask, PlaneMm, SegmentRecipe};
use guidesmith::volume::{self, LoadOptions, Scan, Volume};

use jobs::{Job, Polled};
use slices::{Axis, Overlay, SliceViews, WINDOW_PRESETS};
use view3d::{cross, norm, sub, Camera, GpuBone, GpuMesh, SceneItem, STANDARD_VIEWS};

/// What `guidesmith gui` was asked to do at start.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// A plan file, CT folder, DICOMDIR or DICOM file to open.
    pub open: Option<PathBuf>,
    /// After the CT is loaded, make the bone surface with the default segmentation.
    pub make_surface: bool,
    /// When the start-up work is done, save a screenshot here (PNG) and quit.
    pub screenshot: Option<PathBuf>,
    /// Open the bundled demo case.
    pub demo: bool,
    /// Once the start-up work is done, orbit the 3D view this many frames (2 degrees each, continuous repaint) and
    /// print the frame times, before the screenshot.
    pub orbit_frames: u32,
    /// Where recent files and autosaves live (default: `files::default_config_dir`).
    pub config_dir: Option<PathBuf>,
    /// Once the plan is open: build its guides and select this one, seen along its seating direction.
    pub select_guide: Option<String>,
    /// Once the plan is open (and its guides built): switch to review mode.
    pub review: bool,
}

/// Opens the application window.
pub fn run(start: StartOptions) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_title("guidesmith")
            .with_inner_size([1600.0, 1000.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "guidesmith",
        options,
        Box::new(move |cc| Ok(Box::new(GuidesmithApp::new(cc, start)))),
    )
    .map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
}

/// How the centre is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    FourUp,
    Only3d,
    OnlySlice(Axis),
}

/// What a left click in the 3D view does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Orbit.
    Navigate,
    /// Place a cutting plane on the bone.
    Plane,
    /// Place a drill entry on the bone.
    Drill,
    /// Put a landmark on the bone.
    Landmark,
    /// Add points of a structure to protect (a nerve as a polyline).
    Structure,
    /// Pick two points on the bone and read their distance (review).
    Distance,
}

/// Where a new plane's normal or a new drill's direction comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orientation {
    /// Plane: containing the viewing direction and the screen's vertical; drill: along the view.
    View,
    /// The bone surface's normal at the clicked point (a drill goes into the bone along it).
    Surface,
}

/// A loaded CT.
struct Ct {
    path: PathBuf,
    volume: Arc<Volume>,
    options: LoadOptions,
}

/// The segmentation as the user sets it.
#[derive(Clone, Debug, PartialEq)]
struct SegmentParams {
    min_hu: i16,
    max_hu: i16,
    keep_largest: bool,
    /// Keep the component under the crosshair instead of the largest.
    seed_mm: Option<[f64; 3]>,
    fill_cavities: bool,
    close_mm: f64,
    /// Scissors: half-spaces and boxes cleared.
    cut_planes: Vec<PlaneMm>,
    cut_boxes: Vec<BoxMm>,
}

impl Default for SegmentParams {
    fn default() -> Self {
        SegmentParams {
            min_hu: HuRange::BONE.min_hu(),
            max_hu: HuRange::BONE.max_hu(),
            keep_largest: true,
            seed_mm: None,
            fill_cavities: false,
            close_mm: 0.0,
            cut_planes: Vec::new(),
            cut_boxes: Vec::new(),
        }
    }
}

impl SegmentParams {
    fn recipe(&self) -> Result<SegmentRecipe, String> {
        let hu = HuRange::new(self.min_hu, self.max_hu).map_err(|e| e.to_string())?;
        let mut recipe = SegmentRecipe::new(hu);
        recipe.keep = match self.seed_mm {
            Some(seed) => Keep::Containing { seeds_mm: vec![seed] },
            None if self.keep_largest => Keep::Largest,
            None => Keep::All,
        };
        recipe.fill_cavities = self.fill_cavities;
        recipe.close_mm = self.close_mm;
        recipe.cut_planes.clone_from(&self.cut_planes);
        recipe.cut_boxes.clone_from(&self.cut_boxes);
        recipe.validate().map_err(|e| e.to_string())?;
        Ok(recipe)
    }
}

/// The bone surface and what the views need of it.
struct Bone {
    triangles: usize,
    query: Arc<BoneQuery>,
    gpu: Arc<GpuMesh>,
    coarse: Option<Arc<GpuMesh>>,
    version: u64,
    mask: Option<Arc<Mask>>,
    /// The segmentation that made it (none for an STL bone).
    segmentation: Option<Segmentation>,
    min_mm: [f64; 3],
    max_mm: [f64; 3],
    summary: String,
}

/// The plan being edited.
struct PlanDoc {
    /// Which opened or new plan this is (edits keep it).
    id: u64,
    plan: Plan,
    path: Option<PathBuf>,
    history: History,
    /// The JSON last saved or opened, to tell unsaved changes.
    saved_json: Option<String>,
    version: u64,
}

impl PlanDoc {
    fn dirty(&self) -> bool {
        self.saved_json.as_deref() != Some(self.plan.to_json().as_str())
    }
}

/// A surface made: the model, its segmentation, what the views need, and the seconds of the bone step itself.
type MadeSurface = (BoneModel, Segmentation, BoneQuery, GpuBone, f64);

/// What a worker hands back (one per frame at most, so the size of a variant does not matter).
#[allow(clippy::large_enum_variant)]
enum Outcome {
    Scanned(PathBuf, Result<Scan, String>),
    Loaded(PathBuf, LoadOptions, Result<Volume, String>),
    Surface(Result<Box<MadeSurface>, String>),
    Opened(PathBuf, Result<Box<OpenedPlan>, String>),
    Demo(Result<Box<OpenedDemo>, String>),
    StlBone(PathBuf, Result<(Mesh, BoneQuery, GpuBone, String), String>),
    Proposed(Result<Box<guidesmith::plan::GuideSpec>, String>),
    Built(Result<Box<guides::BuiltGuides>, String>),
    /// A file written (bundle, report): the line to say, or why not.
    Wrote(Result<String, String>),
    /// A donor opened, and where from.
    Donor(Result<Box<(case::DonorBone, String)>, String>),
    /// A reconstruction proposed with its fibula guide built, to record.
    Reconstructed(Result<Box<case::FlapProposal>, String>),
}

struct OpenedPlan {
    plan: Plan,
    json: String,
    bone: Mesh,
    query: BoneQuery,
    gpu: GpuBone,
    ct: Option<(PathBuf, Volume, LoadOptions)>,
}

struct OpenedDemo {
    ct_path: PathBuf,
    volume: Volume,
    model: BoneModel,
    segmentation: Segmentation,
    plan: Plan,
    query: BoneQuery,
    gpu: GpuBone,
}

/// A message in the bottom bar (errors also open a window until dismissed).
#[derive(Clone, Debug)]
struct Message {
    error: bool,
    text: String,
}

/// A drag of the handles: the element, its pose when the drag began and now.
struct GizmoDrag {
    kind: ElementKind,
    name: String,
    start: transform_gizmo::math::Transform,
    now: transform_gizmo::math::Transform,
}

/// A question before something that would lose unsaved changes.
#[derive(Clone, Debug)]
enum Confirm {
    Close,
    Replace(Pending),
}

/// What to do once the user agreed to drop unsaved changes.
#[derive(Clone, Debug)]
enum Pending {
    Open(PathBuf),
    Demo,
    NewPlan,
}

/// Frame times, for the performance figures (longest frame while work runs).
#[derive(Clone, Debug, Default)]
pub struct FrameStats {
    pub frames: u64,
    pub longest_ms: f64,
    pub longest_during_job_ms: f64,
}

/// The application.
pub struct GuidesmithApp {
    ct: Option<Ct>,
    scan: Option<(Scan, usize)>,
    seg: SegmentParams,
    /// Bumped when the slice overlay changes.
    overlay_version: u64,
    bone: Option<Bone>,
    doc: Option<PlanDoc>,
    views: Option<SliceViews>,
    camera: Option<Camera>,
    layout: Layout,
    tool: Tool,
    orientation: Orientation,
    blade_mm: f64,
    screw_system: String,
    drill_length_mm: f64,
    job: Option<Job<Outcome>>,
    eval: Option<Job<Result<Evaluation, String>>>,
    eval_stale: bool,
    evaluation: Option<Evaluation>,
    messages: Vec<Message>,
    error_window: Option<String>,
    confirm: Option<Confirm>,
    close_confirmed: bool,
    selected: Option<(ElementKind, String)>,
    /// Text of the numeric fields of the selected element, by field.
    fields: std::collections::BTreeMap<String, String>,
    fields_of: Option<(ElementKind, String, u64)>,
    show_bone: bool,
    bone_opacity: f32,
    /// Colours (linear RGB) of the bone, the planes and the drills.
    bone_colour: [f32; 3],
    plane_colour: [f32; 3],
    drill_colour: [f32; 3],
    show_planes: bool,
    show_drills: bool,
    /// Place of the finding last clicked, marked in the 3D view.
    marked_place: Option<[f64; 3]>,
    has_3d: bool,
    view3d_rect: egui::Rect,
    start: StartOptions,
    start_surface_pending: bool,
    screenshot_requested: bool,
    pub frame_stats: FrameStats,
    frame_started: Option<Instant>,
    next_version: u64,
    /// Frame-to-frame times of the orbit benchmark, ms.
    orbit_ms: Vec<f64>,
    orbit_running: bool,
    orbit_done: bool,
    /// The camera of the last frame drawn.
    last_camera: Option<Camera>,
    /// Draw at half resolution without MSAA while the view moves (View menu).
    fast_while_moving: bool,
    /// Side panels hidden (View menu), e.g. for a large 3D view.
    panels_hidden: bool,
    /// How long the last job took, s.
    last_job_s: f64,
    /// Seconds the last scan of a CT folder took (reported with the load that follows it).
    scan_s: f64,
    /// When the application started, and how long its start-up work (open, surface) took.
    created: Instant,
    startup_s: Option<f64>,
    /// The configuration folder (recent files, autosaves).
    config: PathBuf,
    /// Recent plans and CT folders, newest first.
    recent: Vec<PathBuf>,
    last_autosave: Instant,
    /// An autosaved version of the open plan that differs from it, offered back.
    recover: Option<PathBuf>,
    /// Plans autosaved before they were ever saved, offered at start.
    unsaved: Vec<PathBuf>,
    /// The move/rotate handles of the selected plane or drill, and the drag in progress.
    gizmo: transform_gizmo::Gizmo,
    gizmo_drag: Option<GizmoDrag>,
    /// First corner of a scissors box.
    box_corner: Option<[f64; 3]>,
    /// Points of the structure being drawn, and its radius.
    structure_points: Vec<[f64; 3]>,
    structure_radius_mm: f64,
    /// How often a running job repaints the window at most (less often on a software renderer).
    repaint_every: std::time::Duration,
    /// Guide design: the add window, the last build, the live contact of the footprints, a vertex drag.
    guides: guides::GuideDesign,
    /// The fibula free-flap reconstruction: the donor, the settings, the proposal shown.
    flap: flap::FlapPanel,
    /// Review mode: the plan is read-only, its reviews and the approval window are shown.
    pub review: bool,
    approve_form: review::ApproveForm,
    /// The points of the distance tool (the last two picked).
    distance_points: Vec<[f64; 3]>,
    /// The time a review is stamped with, UTC RFC 3339 (the clock; the tests' snapshots fix it).
    now_utc: fn() -> String,
}

/// How often a plan with unsaved changes is written to its side file.
const AUTOSAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Names of new elements: `prefix-1`, `prefix-2`, ... (the first free one).
fn free_name(taken: &[&str], prefix: &str) -> String {
    (1..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|n| !taken.contains(&n.as_str()))
        .expect("a free name")
}

impl GuidesmithApp {
    pub fn new(cc: &eframe::CreationContext<'_>, start: StartOptions) -> GuidesmithApp {
        let has_3d = match cc.wgpu_render_state.as_ref() {
            Some(rs) => {
                view3d::install(rs);
                true
            }
            None => false,
        };
        let software = cc
            .wgpu_render_state
            .as_ref()
            .is_some_and(|rs| rs.adapter.get_info().device_type == eframe::egui_wgpu::wgpu::DeviceType::Cpu);
        let repaint_every = if software {
            jobs::REPAINT_IN_SOFTWARE
        } else {
            jobs::REPAINT_ON_GPU
        };
        let config = start.config_dir.clone().unwrap_or_else(files::default_config_dir);
        let mut app = GuidesmithApp {
            ct: None,
            scan: None,
            seg: SegmentParams::default(),
            overlay_version: 1,
            bone: None,
            doc: None,
            views: None,
            camera: None,
            layout: Layout::FourUp,
            tool: Tool::Navigate,
            orientation: Orientation::View,
            blade_mm: 1.0,
            screw_system: Catalogue::builtin().systems.keys().next().cloned().unwrap_or_default(),
            drill_length_mm: 10.0,
            job: None,
            eval: None,
            eval_stale: false,
            evaluation: None,
            messages: Vec::new(),
            error_window: None,
            confirm: None,
            close_confirmed: false,
            selected: None,
            fields: Default::default(),
            fields_of: None,
            show_bone: true,
            bone_opacity: 1.0,
            bone_colour: [0.78, 0.72, 0.6],
            plane_colour: [0.2, 0.55, 0.95],
            drill_colour: [0.85, 0.85, 0.9],
            show_planes: true,
            show_drills: true,
            marked_place: None,
            has_3d,
            view3d_rect: egui::Rect::NOTHING,
            start_surface_pending: start.make_surface,
            start: start.clone(),
            screenshot_requested: false,
            frame_stats: FrameStats::default(),
            frame_started: None,
            next_version: 1,
            orbit_ms: Vec::new(),
            orbit_running: false,
            orbit_done: false,
            last_camera: None,
            // GUIDESMITH_GUI_FULL_QUALITY=1: every frame at full quality (for the orbit benchmark's comparison).
            fast_while_moving: std::env::var_os("GUIDESMITH_GUI_FULL_QUALITY").is_none_or(|v| v == "0"),
            panels_hidden: false,
            last_job_s: 0.0,
            scan_s: 0.0,
            created: Instant::now(),
            startup_s: None,
            recent: files::recent(&config),
            config: config.clone(),
            last_autosave: Instant::now(),
            recover: None,
            unsaved: files::unsaved_autosaves(&config),
            gizmo: transform_gizmo::Gizmo::default(),
            gizmo_drag: None,
            box_corner: None,
            structure_points: Vec::new(),
            structure_radius_mm: 1.5,
            repaint_every,
            guides: guides::GuideDesign::default(),
            flap: flap::FlapPanel::default(),
            review: false,
            approve_form: review::ApproveForm::default(),
            distance_points: Vec::new(),
            now_utc: || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        if let Some(path) = start.open {
            app.open_path(&cc.egui_ctx, path);
        } else if start.demo {
            app.open_demo(&cc.egui_ctx);
        }
        app
    }

    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    fn info(&mut self, text: impl Into<String>) {
        self.messages.push(Message {
            error: false,
            text: text.into(),
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.messages.push(Message {
            error: true,
            text: text.clone(),
        });
        self.error_window = Some(text);
    }

    /// Whether a job runs.
    pub fn busy(&self) -> bool {
        self.job.is_some() || self.eval.is_some() || self.flap_pending()
    }

    fn start_job(
        &mut self,
        ctx: &egui::Context,
        label: &str,
        work: impl FnOnce(&dyn Progress) -> Outcome + Send + 'static,
    ) {
        if self.job.is_some() {
            self.error(format!(
                "{label}: another task is still running; wait for it or cancel it"
            ));
            return;
        }
        self.job = Some(Job::spawn(label, ctx, self.repaint_every, work));
    }

    // ---- Opening -----------------------------------------------------------------------------------------------

    /// Opens a plan file (`.json`), an STL bone or a CT (folder, DICOMDIR or file), asking first if unsaved
    /// changes would be lost.
    pub fn open_path(&mut self, ctx: &egui::Context, path: PathBuf) {
        if self.doc.as_ref().is_some_and(PlanDoc::dirty) {
            self.confirm = Some(Confirm::Replace(Pending::Open(path)));
            return;
        }
        self.open_now(ctx, path);
    }

    fn open_now(&mut self, ctx: &egui::Context, path: PathBuf) {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => self.open_plan(ctx, path),
            Some("stl") => self.open_stl_bone(ctx, path),
            _ => self.scan_ct(ctx, path),
        }
    }

    fn scan_ct(&mut self, ctx: &egui::Context, path: PathBuf) {
        self.start_job(ctx, "Reading the CT folder", move |progress| {
            let scan = volume::scan(&path, progress).map_err(|e| format!("{}: {e}", path.display()));
            Outcome::Scanned(path, scan)
        });
    }

    fn load_series(&mut self, ctx: &egui::Context, mut scan: Scan, index: usize) {
        let path = scan.input.clone();
        let options = LoadOptions::default();
        self.start_job(ctx, "Loading the CT", move |progress| {
            let loaded = scan
                .load_with(index, &options, progress)
                .map_err(|e| format!("{}: {e}", path.display()));
            Outcome::Loaded(path, options, loaded)
        });
    }

    fn open_plan(&mut self, ctx: &egui::Context, path: PathBuf) {
        self.start_job(ctx, "Opening the plan", move |progress| {
            let opened = (|| -> Result<Box<OpenedPlan>, String> {
                let json = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let plan = Plan::from_json(&json).map_err(|e| format!("{}: {e}", path.display()))?;
                let opened = case::open_case(&plan, &path, None, progress).map_err(|e| format!("{e}"))?;
                let query = BoneQuery::new(&opened.bone.mesh).map_err(|e| e.to_string())?;
                let gpu = GpuBone::of(&opened.bone.mesh);
                let ct = opened.volume.map(|(ct_path, volume)| {
                    let options = LoadOptions {
                        rescale_intercept_override: plan.ct.as_ref().and_then(|c| c.rescale_intercept_override_hu),
                    };
                    (ct_path, volume, options)
                });
                Ok(Box::new(OpenedPlan {
                    plan,
                    json,
                    bone: opened.bone.mesh,
                    query,
                    gpu,
                    ct,
                }))
            })();
            Outcome::Opened(path, opened)
        });
    }

    fn open_stl_bone(&mut self, ctx: &egui::Context, path: PathBuf) {
        self.start_job(ctx, "Reading the bone STL", move |progress| {
            let read = (|| -> Result<_, String> {
                progress.checkpoint().map_err(|e| e.to_string())?;
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("bone").to_string();
                let model = case::read_bone_model(&name, &path, None).map_err(|e| e.to_string())?;
                let query = BoneQuery::new(&model.mesh).map_err(|e| e.to_string())?;
                let gpu = GpuBone::of(&model.mesh);
                let summary = format!(
                    "{} triangles, read from {} ({})",
                    model.mesh.triangles.len(),
                    name,
                    model.repair
                );
                Ok((model.mesh, query, gpu, summary))
            })();
            Outcome::StlBone(path, read)
        });
    }

    /// The bundled demo case: the synthetic jaw CT written as DICOM to a temporary folder, loaded, segmented, and
    /// the demo plan on it (unsaved).
    pub fn open_demo(&mut self, ctx: &egui::Context) {
        if self.doc.as_ref().is_some_and(PlanDoc::dirty) {
            self.confirm = Some(Confirm::Replace(Pending::Demo));
            return;
        }
        self.start_job(ctx, "Making the demo case", move |progress| {
            let made = (|| -> Result<Box<OpenedDemo>, String> {
                let dir = demo_ct_dir()?;
                let (volume, _) = volume::load(&dir, None, progress).map_err(|e| format!("{}: {e}", dir.display()))?;
                let segmentation = case::demo::demo_segmentation();
                let model = bone::extract_bone(&volume, &segmentation.recipe, &SurfaceOptions::default(), progress)
                    .map_err(|e| e.to_string())?;
                let plan = case::demo::demo_plan(
                    &model.mesh,
                    Some(CtReference::from_volume(&volume, &dir.display().to_string())),
                    Some(segmentation.clone()),
                )
                .map_err(|e| e.to_string())?;
                let query = BoneQuery::new(&model.mesh).map_err(|e| e.to_string())?;
                let gpu = GpuBone::of(&model.mesh);
                Ok(Box::new(OpenedDemo {
                    ct_path: dir,
                    volume,
                    model,
                    segmentation,
                    plan,
                    query,
                    gpu,
                }))
            })();
            Outcome::Demo(made)
        });
    }

    /// Makes the bone surface from the loaded CT with the current segmentation.
    pub fn make_surface(&mut self, ctx: &egui::Context) {
        let Some(ct) = &self.ct else {
            self.error("Make surface: open a CT first");
            return;
        };
        let recipe = match self.seg.recipe() {
            Ok(r) => r,
            Err(e) => {
                self.error(format!("Make surface: {e}"));
                return;
            }
        };
        let volume = Arc::clone(&ct.volume);
        self.start_job(ctx, "Making the bone surface", move |progress| {
            let made = (|| -> Result<_, String> {
                let segmentation = Segmentation {
                    recipe,
                    smooth_iterations: 0,
                    decimate_keep_fraction: None,
                };
                let t = Instant::now();
                let model = bone::extract_bone(&volume, &segmentation.recipe, &SurfaceOptions::default(), progress)
                    .map_err(|e| e.to_string())?;
                let bone_s = t.elapsed().as_secs_f64();
                progress.checkpoint().map_err(|e| e.to_string())?;
                // What the views need (picking BVH, GPU meshes), side by side.
                let (query, gpu) = rayon::join(|| BoneQuery::new(&model.mesh), || GpuBone::of(&model.mesh));
                let query = query.map_err(|e| e.to_string())?;
                Ok(Box::new((model, segmentation, query, gpu, bone_s)))
            })();
            Outcome::Surface(made)
        });
    }

    fn set_bone(
        &mut self,
        mesh: Mesh,
        query: BoneQuery,
        gpu: GpuBone,
        mask: Option<Mask>,
        segmentation: Option<Segmentation>,
        summary: String,
    ) {
        let bb = mesh.bounding_box().unwrap_or(guidesmith::mesh::BoundingBox {
            min_mm: [0.0; 3],
            max_mm: [1.0; 3],
        });
        let version = self.version();
        if self.camera.is_none() || self.bone.is_none() {
            self.camera = Some(Camera::framing(bb.min_mm, bb.max_mm));
        }
        self.bone = Some(Bone {
            triangles: mesh.triangles.len(),
            query: Arc::new(query),
            gpu: Arc::new(gpu.full),
            coarse: gpu.coarse.map(Arc::new),
            version,
            mask: mask.map(Arc::new),
            segmentation,
            min_mm: bb.min_mm,
            max_mm: bb.max_mm,
            summary,
        });
        self.overlay_version += 1;
        self.eval_stale = true;
    }

    fn finish_job(&mut self, ctx: &egui::Context, outcome: Outcome) {
        match outcome {
            Outcome::Scanned(path, Ok(scan)) => {
                self.scan_s = self.last_job_s;
                let usable: Vec<usize> = (0..scan.series.len())
                    .filter(|&i| scan.series[i].plan().is_ok())
                    .collect();
                if usable.is_empty() {
                    self.error(format!(
                        "{}: no loadable CT series ({} files tried, {} skipped). Choose a folder with a CT series.",
                        path.display(),
                        scan.files_tried,
                        scan.skipped.len()
                    ));
                    self.scan = Some((scan, 0));
                    return;
                }
                let default = scan.select(None).map(|s| scan.index_of(s)).unwrap_or(usable[0]);
                // One series, or started from the command line with work to do: load the default choice (the
                // series table stays reachable by opening the folder again).
                let unattended = self.start_surface_pending || self.start.screenshot.is_some();
                if (scan.series.len() == 1 && scan.skipped.is_empty()) || unattended {
                    self.load_series(ctx, scan, default);
                } else {
                    self.scan = Some((scan, default));
                }
            }
            Outcome::Loaded(path, options, Ok(volume)) => {
                for w in &volume.series.warnings {
                    self.info(format!("CT: {w}"));
                }
                self.info(format!(
                    "Loaded {} ({} x {} x {} voxels) in {:.2} s (scan {:.2} s, load {:.2} s)",
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    volume.geometry.dims[0],
                    volume.geometry.dims[1],
                    volume.geometry.dims[2],
                    self.scan_s + self.last_job_s,
                    self.scan_s,
                    self.last_job_s
                ));
                self.scan_s = 0.0;
                self.views = Some(SliceViews::new(&volume));
                self.remember(&path);
                self.ct = Some(Ct {
                    path,
                    volume: Arc::new(volume),
                    options,
                });
                self.bone = None;
                self.evaluation = None;
                self.overlay_version += 1;
                if std::mem::take(&mut self.start_surface_pending) {
                    self.make_surface(ctx);
                }
            }
            Outcome::Surface(Ok(made)) => {
                let (model, segmentation, query, gpu, bone_s) = *made;
                let summary = format!(
                    "{} triangles, {:.0} mm3, {} voxels; every check passed",
                    model.mesh.triangles.len(),
                    model.report.volume_mm3,
                    model.mask.count()
                );
                self.info(format!(
                    "Bone surface: {summary} (made in {:.2} s: segmentation, surface and checks {bone_s:.2} s, views {:.2} s)",
                    self.last_job_s,
                    self.last_job_s - bone_s
                ));
                self.set_bone(model.mesh, query, gpu, Some(model.mask), Some(segmentation), summary);
            }
            Outcome::Opened(path, Ok(opened)) => {
                let OpenedPlan {
                    plan,
                    json,
                    bone,
                    query,
                    gpu,
                    ct,
                } = *opened;
                self.bone = None;
                self.ct = None;
                self.views = None;
                if let Some((ct_path, volume, options)) = ct {
                    self.views = Some(SliceViews::new(&volume));
                    self.ct = Some(Ct {
                        path: ct_path,
                        volume: Arc::new(volume),
                        options,
                    });
                }
                if let Some(seg) = &plan.bone.segmentation {
                    self.seg = params_of(&seg.recipe);
                }
                let summary = format!("{} triangles, from the plan", bone.triangles.len());
                let segmentation = plan.bone.segmentation.clone();
                self.set_bone(bone, query, gpu, None, segmentation, summary);
                self.info(format!("Opened {}", path.display()));
                if path.starts_with(self.config.join("autosave")) {
                    // A plan that was never saved, recovered: still unsaved.
                    self.unsaved.retain(|p| p != &path);
                    self.set_doc(plan, None, None);
                } else {
                    self.remember(&path);
                    let side = files::autosave_path(&self.config, Some(&path), plan.case_id.as_str());
                    if std::fs::read_to_string(&side).is_ok_and(|text| text != json) {
                        self.recover = Some(side);
                    }
                    self.set_doc(plan, Some(path), Some(json));
                }
                // A reconstruction's donor opens with its plan (the panel shows the recorded segments).
                self.open_recorded_donor(ctx);
            }
            Outcome::Demo(Ok(demo)) => {
                let OpenedDemo {
                    ct_path,
                    volume,
                    model,
                    segmentation,
                    plan,
                    query,
                    gpu,
                } = *demo;
                self.views = Some(SliceViews::new(&volume));
                self.ct = Some(Ct {
                    path: ct_path,
                    volume: Arc::new(volume),
                    options: LoadOptions::default(),
                });
                self.seg = params_of(&segmentation.recipe);
                self.bone = None;
                let summary = format!("{} triangles; every check passed", model.mesh.triangles.len());
                self.set_bone(model.mesh, query, gpu, Some(model.mask), Some(segmentation), summary);
                self.info("Demo case: synthetic jaw CT, bone surface and the demo plan (not saved yet)");
                self.set_doc(plan, None, None);
            }
            Outcome::Proposed(Ok(spec)) => self.proposed(*spec),
            Outcome::Built(Ok(built)) => {
                let failed = built.guides.guides.iter().filter(|g| !g.findings().is_empty()).count();
                self.info(if failed == 0 {
                    format!("{} guide(s) built: all checks passed", built.guides.guides.len())
                } else {
                    format!(
                        "{} guide(s) built, {failed} refused or failed a check",
                        built.guides.guides.len()
                    )
                });
                self.guides.built = Some(*built);
            }
            Outcome::Wrote(Ok(line)) => self.info(line),
            Outcome::Donor(Ok(opened)) => {
                let (bone, source) = *opened;
                self.donor_opened(bone, source);
            }
            Outcome::Reconstructed(Ok(proposal)) => self.reconstructed(*proposal),
            Outcome::StlBone(path, Ok((mesh, query, gpu, summary))) => {
                self.info(format!("Bone from {}: {summary}", path.display()));
                self.bone = None;
                self.set_bone(mesh, query, gpu, None, None, summary);
            }
            Outcome::Scanned(_, Err(e))
            | Outcome::Loaded(_, _, Err(e))
            | Outcome::Surface(Err(e))
            | Outcome::Opened(_, Err(e))
            | Outcome::Demo(Err(e))
            | Outcome::StlBone(_, Err(e))
            | Outcome::Proposed(Err(e))
            | Outcome::Built(Err(e))
            | Outcome::Wrote(Err(e))
            | Outcome::Donor(Err(e))
            | Outcome::Reconstructed(Err(e)) => {
                // Start-up work that failed is over: nothing more will come of it.
                self.start_surface_pending = false;
                if e.contains("cancelled") {
                    self.info(format!("Cancelled: {e}"));
                } else {
                    self.error(e);
                }
            }
        }
    }

    // ---- The plan ----------------------------------------------------------------------------------------------

    fn set_doc(&mut self, plan: Plan, path: Option<PathBuf>, saved_json: Option<String>) {
        let version = self.version();
        self.doc = Some(PlanDoc {
            id: version,
            plan,
            path,
            history: History::new(),
            saved_json,
            version,
        });
        self.selected = None;
        self.eval_stale = true;
        self.evaluation = None;
        // Another case: its donor, if any, is its own.
        self.flap = flap::FlapPanel::default();
    }

    /// A new plan on the current CT and bone (its segmentation recorded), unsaved.
    pub fn new_plan(&mut self) {
        if self.doc.as_ref().is_some_and(PlanDoc::dirty) {
            self.confirm = Some(Confirm::Replace(Pending::NewPlan));
            return;
        }
        let Some(bone) = &self.bone else {
            self.error("New plan: make or open a bone surface first");
            return;
        };
        let ct = self.ct.as_ref().map(|ct| {
            let mut reference = CtReference::from_volume(&ct.volume, &ct.path.display().to_string());
            reference.rescale_intercept_override_hu = ct.options.rescale_intercept_override;
            reference
        });
        if ct.is_none() || bone.segmentation.is_none() {
            self.error("New plan: the GUI makes plans on a CT and its segmentation; for a bone STL use `guidesmith plan new --bone-stl`");
            return;
        }
        let plan = Plan::new(
            CaseId::new("CASE-1").expect("a valid case ID"),
            ct,
            BoneSource {
                segmentation: bone.segmentation.clone(),
                models: Vec::new(),
            },
        );
        self.set_doc(plan, None, None);
        self.info("New plan (case CASE-1); save it to keep it");
    }

    /// Applies `edit` through the plan's history; a refused edit is shown, nothing changes.
    pub fn apply(&mut self, edit: Edit) -> bool {
        if self.review {
            self.error("Review mode is read-only: switch to Design to change the plan");
            return false;
        }
        let Some(doc) = &mut self.doc else {
            self.error("No plan: open a plan, or make one on a bone (Plan > New plan)");
            return false;
        };
        match doc.history.apply(&mut doc.plan, edit) {
            Ok(()) => {
                doc.version += 1;
                self.eval_stale = true;
                true
            }
            Err(e) => {
                self.error(format!("Edit refused: {e}"));
                false
            }
        }
    }

    pub fn undo(&mut self) {
        self.step_history(false);
    }

    pub fn redo(&mut self) {
        self.step_history(true);
    }

    /// Undoes (or redoes) the last edit, if any.
    fn step_history(&mut self, redo: bool) {
        if self.review {
            self.error("Review mode is read-only: switch to Design to undo or redo");
            return;
        }
        let Some(doc) = &mut self.doc else { return };
        let stepped = if redo {
            doc.history.redo(&mut doc.plan)
        } else {
            doc.history.undo(&mut doc.plan)
        };
        match stepped {
            Ok(true) => {
                doc.version += 1;
                self.eval_stale = true;
            }
            Ok(false) => {}
            Err(e) => self.error(format!("{}: {e}", if redo { "Redo" } else { "Undo" })),
        }
    }

    /// Saves the plan to `path` (atomically); the CT is recorded relative to the plan's folder when inside it.
    pub fn save_to(&mut self, path: &Path) -> bool {
        let Some(doc) = &mut self.doc else {
            self.error("Save: there is no plan");
            return false;
        };
        if let (Some(reference), Some(ct)) = (&mut doc.plan.ct, &self.ct) {
            match case::ct_path_for_plan(path, &ct.path) {
                Ok(hint) => reference.path = hint,
                Err(e) => {
                    let text = format!("Save: {e}");
                    self.error(text);
                    return false;
                }
            }
        }
        match doc.plan.save(path) {
            Ok(()) => {
                doc.saved_json = Some(doc.plan.to_json());
                let case_id = doc.plan.case_id.as_str().to_string();
                // Saved: the side files of this plan are out of date.
                for side in [
                    files::autosave_path(&self.config, doc.path.as_deref(), &case_id),
                    files::autosave_path(&self.config, Some(path), &case_id),
                    files::autosave_path(&self.config, None, &case_id),
                ] {
                    let _ = std::fs::remove_file(side);
                }
                doc.path = Some(path.to_path_buf());
                let text = format!("Saved {}", path.display());
                self.info(text);
                self.remember(path);
                true
            }
            Err(e) => {
                self.error(format!("Save: {}: {e}", path.display()));
                false
            }
        }
    }

    fn pick(&self, pos: egui::Pos2) -> Option<([f64; 3], [f64; 3])> {
        let (bone, camera) = (self.bone.as_ref()?, self.camera.as_ref()?);
        let (origin, dir) = camera.ray(self.view3d_rect, pos);
        let hits = bone.query.crossings(origin, dir, 0.0, f64::INFINITY).ok()?;
        hits.iter().find(|c| c.entering).map(|c| (c.point_mm, c.normal))
    }

    /// A left click in the 3D view with a placing tool.
    fn place(&mut self, pos: egui::Pos2) {
        let Some((point, normal)) = self.pick(pos) else {
            self.info("No bone under the cursor");
            return;
        };
        let Some(camera) = self.camera else { return };
        let forward = sub(camera.target_mm, camera.eye_mm());
        let forward = scale(forward, 1.0 / norm(forward).max(1e-9));
        let right = cross(forward, [0.0, 0.0, 1.0]);
        // Round-off of the standard views (cos 90 deg = 6e-17) would show as noise in the numbers.
        let clean = |v: [f64; 3]| v.map(|x| if x.abs() < 1e-12 { 0.0 } else { x });
        let right = clean(scale(right, 1.0 / norm(right).max(1e-9)));
        let forward = clean(forward);
        let Some(doc) = &self.doc else {
            self.error("No plan: make one first (Plan > New plan)");
            return;
        };
        let plan = &doc.plan;
        let edit = match self.tool {
            Tool::Navigate => return,
            Tool::Distance => {
                if self.distance_points.len() == 2 {
                    self.distance_points.clear();
                }
                self.distance_points.push(point);
                if let Some(d) = self.distance_mm() {
                    self.info(format!("distance {d:.2} mm"));
                }
                return;
            }
            Tool::Plane => {
                let name = free_name(
                    &plan.planes.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
                    "plane",
                );
                Edit::Add(Element::Plane(CuttingPlane {
                    name,
                    point_mm: point,
                    normal: match self.orientation {
                        Orientation::View => right,
                        Orientation::Surface => normal,
                    },
                    blade_thickness_mm: self.blade_mm,
                    resected_side: ResectedSide::Positive,
                }))
            }
            Tool::Drill => {
                let name = free_name(
                    &plan.drills.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
                    "drill",
                );
                let system = Catalogue::builtin().get(&self.screw_system).ok();
                Edit::Add(Element::Drill(DrillTrajectory {
                    name,
                    entry_mm: point,
                    direction: match self.orientation {
                        Orientation::View => forward,
                        Orientation::Surface => scale(normal, -1.0),
                    },
                    length_mm: self.drill_length_mm,
                    diameter_mm: system.map_or(1.5, |s| s.drill_diameter_mm),
                    screw_system: system.map(|_| self.screw_system.clone()),
                }))
            }
            Tool::Structure => {
                self.structure_points.push(point);
                return;
            }
            Tool::Landmark => {
                let name = free_name(
                    &plan.landmarks.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
                    "landmark",
                );
                Edit::Add(Element::Landmark(guidesmith::plan::Landmark { name, point_mm: point }))
            }
        };
        let selected = match &edit {
            Edit::Add(e) => Some((e.kind(), e.name().to_string())),
            _ => None,
        };
        if self.apply(edit) {
            self.selected = selected;
            if let Some(views) = &mut self.views {
                if let Some(ct) = &self.ct {
                    views.center_on(&ct.volume, point);
                }
            }
        }
    }

    fn remember(&mut self, path: &Path) {
        if let Err(e) = files::remember(&self.config, path) {
            self.messages.push(Message {
                error: true,
                text: format!("Recent files: {e}"),
            });
        }
        self.recent = files::recent(&self.config);
    }

    /// Writes the autosave side file of the plan if it has unsaved changes; returns where.
    pub fn autosave_now(&mut self) -> Option<PathBuf> {
        self.last_autosave = Instant::now();
        let doc = self.doc.as_ref().filter(|d| d.dirty())?;
        let side = files::autosave_path(&self.config, doc.path.as_deref(), doc.plan.case_id.as_str());
        match files::autosave(&side, &doc.plan.to_json()) {
            Ok(()) => Some(side),
            Err(e) => {
                self.messages.push(Message {
                    error: true,
                    text: format!("Autosave: {e}"),
                });
                None
            }
        }
    }

    /// Replaces the open plan by its autosaved version (unsaved changes then).
    fn recover_autosave(&mut self, side: &Path) {
        let recovered = std::fs::read_to_string(side)
            .map_err(|e| format!("{}: {e}", side.display()))
            .and_then(|text| Plan::from_json(&text).map_err(|e| format!("{}: {e}", side.display())));
        match (recovered, &mut self.doc) {
            (Ok(plan), Some(doc)) => {
                doc.plan = plan;
                doc.history.clear();
                doc.version += 1;
                self.eval_stale = true;
                self.info(format!("Recovered the autosaved changes of {}", side.display()));
            }
            (Err(e), _) => self.error(format!("Recover: {e}")),
            (Ok(_), None) => {}
        }
    }

    /// Adds the structure drawn so far (a nerve through the clicked points).
    pub fn finish_structure(&mut self) {
        if self.structure_points.len() < 2 {
            self.error("A structure needs at least two points: click on the bone along it");
            return;
        }
        let Some(doc) = &self.doc else { return };
        let name = free_name(
            &doc.plan.structures.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            "nerve",
        );
        let edit = Edit::Add(Element::Structure(guidesmith::plan::Structure {
            name: name.clone(),
            kind: guidesmith::plan::StructureKind::Nerve,
            points_mm: std::mem::take(&mut self.structure_points),
            radius_mm: self.structure_radius_mm,
            margin_mm: 1.0,
        }));
        if self.apply(edit) {
            self.selected = Some((ElementKind::Structure, name));
        }
    }

    // ---- Frame -------------------------------------------------------------------------------------------------

    fn poll_jobs(&mut self, ctx: &egui::Context) {
        if let Some(job) = &self.job {
            match job.poll() {
                Polled::Running => {}
                Polled::Done(outcome) => {
                    self.last_job_s = job.elapsed_s();
                    self.job = None;
                    self.finish_job(ctx, outcome);
                }
                Polled::Died => {
                    self.job = None;
                    self.error("The task stopped unexpectedly (an internal error); nothing was changed");
                }
            }
        }
        if let Some(eval) = &self.eval {
            match eval.poll() {
                Polled::Running => {}
                Polled::Done(result) => {
                    self.eval = None;
                    match result {
                        Ok(e) => self.evaluation = Some(e),
                        Err(e) => self.messages.push(Message {
                            error: true,
                            text: format!("Measurements: {e}"),
                        }),
                    }
                }
                Polled::Died => self.eval = None,
            }
        }
        if self.eval_stale && (self.doc.is_none() || self.bone.is_none()) {
            // Nothing to measure.
            self.eval_stale = false;
            self.evaluation = None;
        }
        if self.eval_stale && self.eval.is_none() {
            if let (Some(doc), Some(bone)) = (&self.doc, &self.bone) {
                self.eval_stale = false;
                let plan = doc.plan.clone();
                let query = Arc::clone(&bone.query);
                self.eval = Some(Job::spawn("Measuring", ctx, self.repaint_every, move |_| {
                    guidesmith::plan::evaluate_with(&plan, &query, Catalogue::builtin(), &EvaluateOptions::default())
                        .map_err(|e| e.to_string())
                }));
            }
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        let (undo, redo, save) = ctx.input_mut(|i| {
            let redo = i.consume_key(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z)
                || i.consume_key(egui::Modifiers::COMMAND, egui::Key::Y);
            let undo = i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
            let save = i.consume_key(egui::Modifiers::COMMAND, egui::Key::S);
            (undo, redo, save)
        });
        if undo {
            self.undo();
        }
        if redo {
            self.redo();
        }
        if save {
            self.save_dialog(false);
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect());
        if let Some(path) = dropped.into_iter().next() {
            self.open_path(ctx, path);
        }
    }

    fn save_dialog(&mut self, always_ask: bool) {
        let Some(doc) = &self.doc else {
            self.error("Save: there is no plan");
            return;
        };
        let path = match (&doc.path, always_ask) {
            (Some(p), false) => Some(p.clone()),
            _ => rfd::FileDialog::new()
                .add_filter("Plan", &["json"])
                .set_file_name(format!("{}.json", doc.plan.case_id.as_str()))
                .save_file(),
        };
        if let Some(path) = path {
            self.save_to(&path);
        }
    }

    fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open CT…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().set_title("Open a CT folder").pick_folder() {
                        self.open_path(ui.ctx(), p);
                    }
                }
                if ui.button("Open DICOM file or DICOMDIR…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().pick_file() {
                        self.open_path(ui.ctx(), p);
                    }
                }
                if ui.button("Open plan…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().add_filter("Plan", &["json"]).pick_file() {
                        self.open_path(ui.ctx(), p);
                    }
                }
                if ui.button("Open bone STL…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().add_filter("STL", &["stl"]).pick_file() {
                        self.open_path(ui.ctx(), p);
                    }
                }
                if ui.button("Open the demo case").clicked() {
                    self.open_demo(ui.ctx());
                }
                let recent = self.recent.clone();
                ui.add_enabled_ui(!recent.is_empty(), |ui| {
                    ui.menu_button("Open recent", |ui| {
                        for path in recent {
                            if ui.button(path.display().to_string()).clicked() {
                                self.open_path(ui.ctx(), path);
                            }
                        }
                    });
                });
                ui.separator();
                if ui.button("Save plan").clicked() {
                    self.save_dialog(false);
                }
                if ui.button("Save plan as…").clicked() {
                    self.save_dialog(true);
                }
                ui.separator();
                let has_plan = self.doc.is_some() && self.bone.is_some();
                let folder = |title: &str| rfd::FileDialog::new().set_title(title).pick_folder();
                if ui
                    .add_enabled(has_plan, egui::Button::new("Export guides (STL, 3MF, manifest)…"))
                    .clicked()
                {
                    if let Some(p) = folder("Folder for the guides") {
                        self.export(ui.ctx(), guides::Export::Guides, p);
                    }
                }
                if ui
                    .add_enabled(has_plan, egui::Button::new("Export anatomical models…"))
                    .clicked()
                {
                    if let Some(p) = folder("Folder for the models") {
                        self.export(ui.ctx(), guides::Export::Models, p);
                    }
                }
                if ui.add_enabled(has_plan, egui::Button::new("Export glTF…")).clicked() {
                    let name = self
                        .doc
                        .as_ref()
                        .map_or("case.glb".into(), |d| format!("{}_plan.glb", d.plan.case_id.as_str()));
                    if let Some(p) = rfd::FileDialog::new()
                        .add_filter("glTF", &["glb"])
                        .set_file_name(name)
                        .save_file()
                    {
                        self.export(ui.ctx(), guides::Export::Gltf, p);
                    }
                }
                if ui.add_enabled(has_plan, egui::Button::new("Export bundle…")).clicked() {
                    let name = self
                        .doc
                        .as_ref()
                        .map_or("case".into(), |d| format!("{}.zip", d.plan.case_id.as_str()));
                    if let Some(p) = rfd::FileDialog::new()
                        .add_filter("Bundle", &["zip"])
                        .set_file_name(name)
                        .save_file()
                    {
                        self.export_bundle(ui.ctx(), p);
                    }
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("Edit", |ui| {
                let (can_undo, can_redo) = self
                    .doc
                    .as_ref()
                    .map_or((false, false), |d| (d.history.can_undo(), d.history.can_redo()));
                if ui
                    .add_enabled(can_undo, egui::Button::new("Undo").shortcut_text("Ctrl+Z"))
                    .clicked()
                {
                    self.undo();
                }
                if ui
                    .add_enabled(can_redo, egui::Button::new("Redo").shortcut_text("Ctrl+Shift+Z"))
                    .clicked()
                {
                    self.redo();
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut self.panels_hidden, "Hide side panels");
                ui.checkbox(&mut self.fast_while_moving, "Fast drawing while the 3D view moves");
                ui.checkbox(&mut self.show_bone, "Bone");
                ui.checkbox(&mut self.show_planes, "Planes");
                ui.checkbox(&mut self.show_drills, "Drills");
            });
            ui.menu_button("Plan", |ui| {
                if ui.button("New plan").clicked() {
                    self.new_plan();
                }
            });
            ui.separator();
            for (label, layout) in [
                ("Four views", Layout::FourUp),
                ("3D", Layout::Only3d),
                ("Axial", Layout::OnlySlice(Axis::Axial)),
                ("Coronal", Layout::OnlySlice(Axis::Coronal)),
                ("Sagittal", Layout::OnlySlice(Axis::Sagittal)),
            ] {
                ui.selectable_value(&mut self.layout, layout, label);
            }
        });
    }

    fn case_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Case");
        if self.ct.is_none() && self.bone.is_none() {
            ui.label("Open a CT folder (File > Open CT…, or drop it on the window), a plan, or the demo case.");
            if ui.button("Open the demo case").clicked() {
                self.open_demo(ui.ctx());
            }
        }
        let mut reopen = None;
        for path in &self.unsaved {
            let name = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if ui.button(format!("Recover unsaved plan {name}")).clicked() {
                reopen = Some(path.clone());
            }
        }
        if let Some(path) = reopen {
            self.open_path(ui.ctx(), path);
        }
        let mut load = None;
        if let Some((scan, chosen)) = &mut self.scan {
            ui.separator();
            ui.strong(format!("Series in {}", file_name(&scan.input)));
            egui::Grid::new("series").striped(true).show(ui, |ui| {
                for (i, s) in scan.series.iter().enumerate() {
                    let ok = s.plan().is_ok();
                    ui.add_enabled_ui(ok, |ui| ui.radio_value(chosen, i, s.info.label()));
                    ui.label(format!(
                        "{} {} slices {}x{} {}",
                        s.info.modality, s.info.slices, s.info.matrix[0], s.info.matrix[1], s.info.description
                    ));
                    ui.end_row();
                    if let Err(why) = s.plan() {
                        ui.label("");
                        ui.colored_label(Color32::LIGHT_RED, why);
                        ui.end_row();
                    }
                }
            });
            if !scan.skipped.is_empty() {
                egui::CollapsingHeader::new(format!("{} files skipped", scan.skipped.len())).show(ui, |ui| {
                    for f in scan.skipped.iter().take(200) {
                        ui.label(format!("{}: {}", file_name(&f.path), f.reason));
                    }
                });
            }
            if scan.series.get(*chosen).is_some_and(|s| s.plan().is_ok()) && ui.button("Load series").clicked() {
                load = Some(*chosen);
            }
        }
        if let Some(index) = load {
            if let Some((scan, _)) = self.scan.take() {
                self.load_series(ui.ctx(), scan, index);
            }
        }
        if let Some(ct) = &self.ct {
            ui.separator();
            let g = &ct.volume.geometry;
            ui.strong("CT");
            ui.label(format!(
                "{} x {} x {} voxels, {:.2} x {:.2} x {:.2} mm",
                g.dims[0], g.dims[1], g.dims[2], g.spacing_mm[0], g.spacing_mm[1], g.spacing_mm[2]
            ));
            ui.separator();
            ui.strong("Segmentation");
            let before = self.seg.clone();
            ui.horizontal(|ui| {
                for name in ["bone", "cortical", "enamel"] {
                    if let Some(r) = HuRange::preset(name) {
                        if ui.button(name).clicked() {
                            self.seg.min_hu = r.min_hu();
                            self.seg.max_hu = r.max_hu();
                        }
                    }
                }
            });
            ui.horizontal(|ui| {
                let l = ui.label("HU min");
                ui.add(egui::DragValue::new(&mut self.seg.min_hu).range(-1024..=3071))
                    .labelled_by(l.id);
                let l = ui.label("max");
                ui.add(egui::DragValue::new(&mut self.seg.max_hu).range(-1024..=32767))
                    .labelled_by(l.id);
            });
            ui.add(egui::Slider::new(&mut self.seg.min_hu, -1024..=3071).text("lower threshold"));
            ui.checkbox(&mut self.seg.keep_largest, "Keep the largest component");
            ui.horizontal(|ui| {
                if ui
                    .button("Seed at crosshair")
                    .on_hover_text("Keep the component under the crosshair")
                    .clicked()
                {
                    if let (Some(views), Some(ct)) = (&self.views, &self.ct) {
                        let c = views.cursor;
                        let p = ct.volume.geometry.to_patient([c[0] as f64, c[1] as f64, c[2] as f64]);
                        self.seg.seed_mm = Some([p.x, p.y, p.z]);
                    }
                }
                if let Some(s) = self.seg.seed_mm {
                    ui.label(format!("seed {:.1}, {:.1}, {:.1}", s[0], s[1], s[2]));
                    if ui.small_button("x").clicked() {
                        self.seg.seed_mm = None;
                    }
                }
            });
            ui.checkbox(&mut self.seg.fill_cavities, "Fill cavities");
            ui.horizontal(|ui| {
                let l = ui.label("Closing mm");
                ui.add(egui::DragValue::new(&mut self.seg.close_mm).range(0.0..=5.0).speed(0.1))
                    .labelled_by(l.id);
            });
            self.scissors(ui);
            if self.seg != before {
                self.overlay_version += 1;
            }
            if ui
                .add_enabled(self.job.is_none(), egui::Button::new("Make surface"))
                .clicked()
            {
                self.make_surface(ui.ctx());
            }
        }
        if let Some(bone) = &self.bone {
            ui.separator();
            ui.strong("Bone");
            ui.label(&bone.summary);
            ui.checkbox(&mut self.show_bone, "Show bone");
            ui.add(egui::Slider::new(&mut self.bone_opacity, 0.2..=1.0).text("opacity"));
            ui.horizontal(|ui| {
                egui::color_picker::color_edit_button_rgb(ui, &mut self.bone_colour);
                ui.label("bone colour");
            });
            ui.horizontal(|ui| {
                ui.checkbox(&mut self.show_planes, "Show planes");
                egui::color_picker::color_edit_button_rgb(ui, &mut self.plane_colour);
            });
            ui.horizontal(|ui| {
                ui.checkbox(&mut self.show_drills, "Show drills");
                egui::color_picker::color_edit_button_rgb(ui, &mut self.drill_colour);
            });
        }
    }

    /// Scissors: clear the bone on one side of the crosshair, or in a box between two crosshair positions.
    fn scissors(&mut self, ui: &mut egui::Ui) {
        let (Some(views), Some(ct)) = (&self.views, &self.ct) else {
            return;
        };
        let c = views.cursor;
        let p = ct.volume.geometry.to_patient([c[0] as f64, c[1] as f64, c[2] as f64]);
        let here = [p.x, p.y, p.z];
        egui::CollapsingHeader::new("Scissors").show(ui, |ui| {
            ui.label("Clear everything beyond the crosshair, toward:");
            ui.horizontal(|ui| {
                for (label, normal) in [
                    ("S", [0.0, 0.0, 1.0]),
                    ("I", [0.0, 0.0, -1.0]),
                    ("A", [0.0, -1.0, 0.0]),
                    ("P", [0.0, 1.0, 0.0]),
                    ("R", [-1.0, 0.0, 0.0]),
                    ("L", [1.0, 0.0, 0.0]),
                ] {
                    if ui.button(format!("cut {label}")).clicked() {
                        self.seg.cut_planes.push(PlaneMm { point_mm: here, normal });
                    }
                }
            });
            ui.horizontal(|ui| {
                if ui.button("Box corner at crosshair").clicked() {
                    self.box_corner = Some(here);
                }
                if let Some(corner) = self.box_corner {
                    if ui.button("Clear the box to the crosshair").clicked() {
                        self.seg.cut_boxes.push(BoxMm {
                            min_mm: [0, 1, 2].map(|k| corner[k].min(here[k])),
                            max_mm: [0, 1, 2].map(|k| corner[k].max(here[k])),
                        });
                        self.box_corner = None;
                    }
                }
            });
            let mut remove_plane = None;
            for (i, c) in self.seg.cut_planes.iter().enumerate() {
                ui.horizontal(|ui| {
                    ui.label(format!(
                        "plane at {:.1}, {:.1}, {:.1} toward {}",
                        c.point_mm[0],
                        c.point_mm[1],
                        c.point_mm[2],
                        slices::letter(c.normal)
                    ));
                    if ui.small_button("x").clicked() {
                        remove_plane = Some(i);
                    }
                });
            }
            let mut remove_box = None;
            for (i, b) in self.seg.cut_boxes.iter().enumerate() {
                ui.horizontal(|ui| {
                    ui.label(format!(
                        "box {:.0},{:.0},{:.0} to {:.0},{:.0},{:.0}",
                        b.min_mm[0], b.min_mm[1], b.min_mm[2], b.max_mm[0], b.max_mm[1], b.max_mm[2]
                    ));
                    if ui.small_button("x").clicked() {
                        remove_box = Some(i);
                    }
                });
            }
            if let Some(i) = remove_plane {
                self.seg.cut_planes.remove(i);
            }
            if let Some(i) = remove_box {
                self.seg.cut_boxes.remove(i);
            }
        });
    }

    fn plan_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Plan");
        let Some(doc) = &self.doc else {
            ui.label("No plan. Make the bone surface, then Plan > New plan; or open a plan.");
            if self.bone.is_some() && ui.button("New plan").clicked() {
                self.new_plan();
            }
            return;
        };
        ui.label(format!(
            "Case {}{}",
            doc.plan.case_id.as_str(),
            if doc.dirty() { " (unsaved changes)" } else { "" }
        ));
        ui.horizontal(|ui| {
            ui.label("Mode:");
            if ui.selectable_label(!self.review, "Design").clicked() {
                self.review = false;
            }
            if ui.selectable_label(self.review, "Review").clicked() {
                self.review = true;
                self.tool = Tool::Navigate;
            }
        });
        if self.review {
            self.review_panel(ui);
            return;
        }
        if self.tool == Tool::Distance {
            self.tool = Tool::Navigate;
        }
        ui.horizontal(|ui| {
            ui.label("Tool:");
            ui.selectable_value(&mut self.tool, Tool::Navigate, "Orbit");
            ui.selectable_value(&mut self.tool, Tool::Plane, "Add plane");
            ui.selectable_value(&mut self.tool, Tool::Drill, "Add drill");
            ui.selectable_value(&mut self.tool, Tool::Landmark, "Add landmark");
            ui.selectable_value(&mut self.tool, Tool::Structure, "Add nerve");
        });
        if self.tool == Tool::Structure {
            ui.horizontal(|ui| {
                ui.label(format!("{} points clicked", self.structure_points.len()));
                let l = ui.label("radius mm");
                ui.add(
                    egui::DragValue::new(&mut self.structure_radius_mm)
                        .range(0.2..=10.0)
                        .speed(0.1),
                )
                .labelled_by(l.id);
            });
            let (finish, clear) = ui
                .horizontal(|ui| (ui.button("Finish nerve").clicked(), ui.button("Clear points").clicked()))
                .inner;
            if clear {
                self.structure_points.clear();
            }
            if finish {
                self.finish_structure();
                return;
            }
        }
        if matches!(self.tool, Tool::Plane | Tool::Drill) {
            ui.horizontal(|ui| {
                ui.label("Direction from");
                ui.selectable_value(&mut self.orientation, Orientation::View, "view");
                ui.selectable_value(&mut self.orientation, Orientation::Surface, "surface");
            });
        }
        if self.tool == Tool::Plane {
            egui::ComboBox::from_label("Blade mm")
                .selected_text(format!("{:.2}", self.blade_mm))
                .show_ui(ui, |ui| {
                    for b in [0.4, 0.6, 0.8, 1.0, 1.25] {
                        ui.selectable_value(&mut self.blade_mm, b, format!("{b:.2}"));
                    }
                });
        }
        if self.tool == Tool::Drill {
            egui::ComboBox::from_label("Screw system")
                .selected_text(self.screw_system.clone())
                .show_ui(ui, |ui| {
                    for name in Catalogue::builtin().systems.keys() {
                        ui.selectable_value(&mut self.screw_system, name.clone(), name);
                    }
                });
        }
        ui.separator();
        let mut clicked = None;
        let mut remove = None;
        let lists: [(ElementKind, Vec<String>); 4] = [
            (
                ElementKind::Plane,
                doc.plan.planes.iter().map(|p| p.name.clone()).collect(),
            ),
            (
                ElementKind::Drill,
                doc.plan.drills.iter().map(|p| p.name.clone()).collect(),
            ),
            (
                ElementKind::Structure,
                doc.plan.structures.iter().map(|p| p.name.clone()).collect(),
            ),
            (
                ElementKind::Landmark,
                doc.plan.landmarks.iter().map(|p| p.name.clone()).collect(),
            ),
        ];
        for (kind, names) in lists {
            if names.is_empty() {
                continue;
            }
            ui.strong(kind.list_name());
            for name in names {
                ui.horizontal(|ui| {
                    let is = self.selected.as_ref() == Some(&(kind, name.clone()));
                    if ui.selectable_label(is, &name).clicked() {
                        clicked = Some((kind, name.clone()));
                    }
                    if is && ui.small_button("Delete").clicked() {
                        remove = Some((kind, name.clone()));
                    }
                });
            }
        }
        if let Some(sel) = clicked {
            self.selected = Some(sel);
        }
        if let Some((kind, name)) = remove {
            if self.apply(Edit::Remove { kind, name }) {
                self.selected = None;
            }
        }
        self.element_fields(ui);
        ui.separator();
        self.guides_ui(ui);
        ui.separator();
        self.flap_ui(ui);
        ui.separator();
        self.measurements(ui);
    }

    /// Numeric fields of the selected plane, drill or landmark; each committed value is one edit.
    fn element_fields(&mut self, ui: &mut egui::Ui) {
        let Some((kind, name)) = self.selected.clone() else {
            return;
        };
        let Some(doc) = &self.doc else { return };
        let values: Vec<(&str, String)> = match kind {
            ElementKind::Plane => match doc.plan.planes.iter().find(|p| p.name == name) {
                Some(p) => vec![
                    ("point_mm", json_list(&p.point_mm)),
                    ("normal", json_list(&p.normal)),
                    ("blade_thickness_mm", format!("{}", p.blade_thickness_mm)),
                ],
                None => return,
            },
            ElementKind::Drill => match doc.plan.drills.iter().find(|d| d.name == name) {
                Some(d) => vec![
                    ("entry_mm", json_list(&d.entry_mm)),
                    ("direction", json_list(&d.direction)),
                    ("length_mm", format!("{}", d.length_mm)),
                    ("diameter_mm", format!("{}", d.diameter_mm)),
                ],
                None => return,
            },
            ElementKind::Landmark => match doc.plan.landmarks.iter().find(|l| l.name == name) {
                Some(l) => vec![("point_mm", json_list(&l.point_mm))],
                None => return,
            },
            _ => return,
        };
        // Refill the texts when the element or the plan changed (an undo, a move).
        let key = (kind, name.clone(), doc.version);
        if self.fields_of.as_ref() != Some(&key) {
            self.fields = values.iter().map(|(f, v)| (f.to_string(), v.clone())).collect();
            self.fields_of = Some(key);
        }
        ui.separator();
        ui.strong(format!("{} {}", kind.name(), name));
        let mut commit = None;
        egui::Grid::new("fields").num_columns(2).show(ui, |ui| {
            for (field, _) in &values {
                let label = ui.label(*field);
                let text = self.fields.entry(field.to_string()).or_default();
                let r = ui
                    .add(egui::TextEdit::singleline(text).desired_width(220.0))
                    .labelled_by(label.id);
                if r.lost_focus() {
                    commit = Some((field.to_string(), text.clone()));
                }
                ui.end_row();
            }
        });
        ui.horizontal(|ui| {
            let l = ui.label("Move mm");
            let text = self.fields.entry("move".into()).or_insert_with(|| "[0, 0, 0]".into());
            ui.add(egui::TextEdit::singleline(text).desired_width(140.0))
                .labelled_by(l.id);
            if ui.button("Move").clicked() {
                commit = Some(("move".into(), text.clone()));
            }
        });
        ui.horizontal(|ui| {
            let l = ui.label("Rotate deg about L, P, S");
            let text = self.fields.entry("rotate".into()).or_insert_with(|| "[0, 0, 0]".into());
            ui.add(egui::TextEdit::singleline(text).desired_width(140.0))
                .labelled_by(l.id);
            if ui.button("Rotate").clicked() {
                commit = Some(("rotate".into(), text.clone()));
            }
        });
        let Some((field, text)) = commit else { return };
        let current = values.iter().find(|(f, _)| *f == field).map(|(_, v)| v.clone());
        if current.as_deref() == Some(text.as_str()) {
            return;
        }
        let value: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                self.error(format!(
                    "{field}: '{text}' is not a number or a list of three numbers ({e})"
                ));
                self.fields_of = None;
                return;
            }
        };
        let edit = match field.as_str() {
            "move" => match serde_json::from_value::<[f64; 3]>(value) {
                Ok(delta_mm) if delta_mm != [0.0; 3] => Edit::Translate { kind, name, delta_mm },
                Ok(_) => return,
                Err(e) => {
                    self.error(format!("Move: give three numbers in mm, e.g. [1, 0, 0] ({e})"));
                    return;
                }
            },
            "rotate" => match serde_json::from_value::<[f64; 3]>(value) {
                Ok(angles) => {
                    // One edit per non-zero axis, in L, P, S order.
                    let mut ok = true;
                    for (axis, angle) in [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
                        .into_iter()
                        .zip(angles)
                    {
                        if angle != 0.0 && ok {
                            ok = self.apply(Edit::Rotate {
                                kind,
                                name: name.clone(),
                                axis,
                                angle_deg: angle,
                                pivot_mm: None,
                            });
                        }
                    }
                    self.fields_of = None;
                    return;
                }
                Err(e) => {
                    self.error(format!("Rotate: give three angles in degrees ({e})"));
                    return;
                }
            },
            _ => Edit::Set {
                kind,
                name,
                field,
                value,
            },
        };
        self.apply(edit);
        self.fields_of = None;
    }

    fn measurements(&mut self, ui: &mut egui::Ui) {
        ui.strong("Measurements");
        if self.eval.is_some() || self.eval_stale {
            ui.label("measuring…");
        }
        let Some(e) = &self.evaluation else { return };
        // The element and place of a clicked finding.
        type Goto = (Option<(ElementKind, String)>, Option<[f64; 3]>);
        let mut goto: Option<Goto> = None;
        for p in &e.planes {
            ui.label(format!(
                "{}: {} section {:.1} mm2, perimeter {:.1} mm",
                p.name,
                if p.cuts_bone {
                    "cuts the bone,"
                } else {
                    "misses the bone,"
                },
                p.area_mm2,
                p.perimeter_mm
            ));
        }
        for pair in &e.plane_pairs {
            let gap = pair
                .centroid_distance_mm
                .map_or("-".to_string(), |d| format!("{d:.1} mm"));
            ui.label(format!(
                "{} / {}: {:.1} deg, resection {gap}",
                pair.first, pair.second, pair.angle_deg
            ));
        }
        for d in &e.drills {
            let bicortical = d.bicortical_length_mm.map_or("-".to_string(), |l| format!("{l:.1} mm"));
            ui.label(format!(
                "{}: in bone {:.1} mm, bicortical {bicortical}{}",
                d.name,
                d.bone_within_length_mm,
                d.clearances
                    .iter()
                    .map(|c| format!(", {:.1} mm to {}", c.clearance_mm, c.structure))
                    .collect::<String>()
            ));
        }
        ui.separator();
        ui.strong(format!("Findings ({})", e.findings.len()));
        for f in &e.findings {
            let colour = match f.severity {
                Severity::Error => Color32::from_rgb(255, 110, 100),
                Severity::Warning => Color32::from_rgb(255, 200, 80),
            };
            let text = RichText::new(format!("{} {}: {}", f.code.as_str(), f.element, f.message)).color(colour);
            if ui.add(egui::Label::new(text).sense(egui::Sense::click())).clicked() {
                goto = Some((self.doc.as_ref().and_then(|d| element_of(&d.plan, f)), f.place_mm));
            }
        }
        if let Some((element, place)) = goto {
            if let Some(element) = element {
                self.selected = Some(element);
            }
            self.marked_place = place;
            if let (Some(place), Some(views), Some(ct)) = (place, &mut self.views, &self.ct) {
                views.center_on(&ct.volume, place);
            }
        }
    }

    /// The point a selected plane or drill is moved by (plane point, drill entry).
    fn handle_point(&self) -> Option<(ElementKind, String, [f64; 3])> {
        let (kind, name) = self.selected.clone()?;
        let plan = &self.doc.as_ref()?.plan;
        let point = match kind {
            ElementKind::Plane => plan.planes.iter().find(|p| p.name == name)?.point_mm,
            ElementKind::Drill => plan.drills.iter().find(|d| d.name == name)?.entry_mm,
            _ => return None,
        };
        Some((kind, name, point))
    }

    /// Draws and runs the handles of the selected plane or drill (in the orbit tool); returns true while they have
    /// the pointer, so the view does not orbit. A finished drag becomes a rotation about the element's point and a
    /// translation, each an edit of the plan.
    fn handles(&mut self, ui: &egui::Ui, rect: egui::Rect, camera: &Camera) -> bool {
        let Some((kind, name, point)) = self
            .handle_point()
            .filter(|_| self.tool == Tool::Navigate && !self.review)
        else {
            self.gizmo_drag = None;
            return false;
        };
        let mut pose = match &self.gizmo_drag {
            Some(d) if d.kind == kind && d.name == name => d.now,
            _ => gizmo::at(point),
        };
        let before = pose;
        let (view, clip) = camera.view_and_clip((rect.width() / rect.height().max(1.0)) as f64);
        let changed = gizmo::interact(&mut self.gizmo, ui, rect, &view, &clip, &mut pose);
        if changed {
            match &mut self.gizmo_drag {
                Some(d) => d.now = pose,
                None => {
                    self.gizmo_drag = Some(GizmoDrag {
                        kind,
                        name: name.clone(),
                        start: before,
                        now: pose,
                    })
                }
            }
        }
        let released = !ui.input(|i| i.pointer.button_down(egui::PointerButton::Primary));
        if released {
            if let Some(d) = self.gizmo_drag.take() {
                let q = gizmo::rotation(&d.now) * gizmo::rotation(&d.start).inverse();
                if let Some((axis, angle)) = q.axis_angle() {
                    if angle.to_degrees().abs() > 1e-6 {
                        self.apply(Edit::Rotate {
                            kind,
                            name: name.clone(),
                            axis: [axis.x, axis.y, axis.z],
                            angle_deg: angle.to_degrees(),
                            pivot_mm: None,
                        });
                    }
                }
                let delta_mm = sub(gizmo::translation(&d.now), gizmo::translation(&d.start));
                if delta_mm != [0.0; 3] {
                    self.apply(Edit::Translate { kind, name, delta_mm });
                }
            }
        }
        changed || self.gizmo.is_focused() || self.gizmo_drag.is_some()
    }

    /// Where the handles would put a point and a direction of element `kind`/`name` (unchanged if no drag).
    fn dragged(&self, kind: ElementKind, name: &str, point: [f64; 3], direction: [f64; 3]) -> ([f64; 3], [f64; 3]) {
        match &self.gizmo_drag {
            Some(d) if d.kind == kind && d.name == name => {
                let q = gizmo::rotation(&d.now) * gizmo::rotation(&d.start).inverse();
                let dir = q * nalgebra::Vector3::from(direction);
                let shift = sub(gizmo::translation(&d.now), gizmo::translation(&d.start));
                ([0, 1, 2].map(|k| point[k] + shift[k]), [dir.x, dir.y, dir.z])
            }
            _ => (point, direction),
        }
    }

    fn scene(&self) -> Vec<SceneItem> {
        let mut scene = Vec::new();
        let Some(bone) = &self.bone else { return scene };
        if self.show_bone {
            // With a reconstruction shown, the bone its resection removes is left out so the segments show.
            let (key, version, mesh, coarse) = match self.flap_bone() {
                Some(left) => (
                    "bone:flap".to_string(),
                    hash_of(&self.flap.preview.as_ref().map(|p| p.key)),
                    left,
                    None,
                ),
                None => (
                    "bone".to_string(),
                    bone.version,
                    Arc::clone(&bone.gpu),
                    bone.coarse.clone(),
                ),
            };
            scene.push(SceneItem {
                key,
                version,
                mesh,
                coarse,
                color: [
                    self.bone_colour[0],
                    self.bone_colour[1],
                    self.bone_colour[2],
                    self.bone_opacity,
                ],
            });
        }
        let Some(doc) = &self.doc else { return scene };
        let grow = 5.0;
        let min = bone.min_mm.map(|x| x - grow);
        let max = bone.max_mm.map(|x| x + grow);
        let diag = norm(sub(max, min));
        let selected =
            |kind: ElementKind, name: &str| self.selected.as_ref().is_some_and(|(k, n)| *k == kind && n == name);
        if self.show_planes {
            for p in &doc.plan.planes {
                let (point, normal) = self.dragged(ElementKind::Plane, &p.name, p.point_mm, p.normal);
                let poly = guidesmith::mesh::shapes::plane_patch(point, normal, diag, min, max);
                let colour = if selected(ElementKind::Plane, &p.name) {
                    [0.95, 0.55, 0.1, 0.55]
                } else {
                    [self.plane_colour[0], self.plane_colour[1], self.plane_colour[2], 0.4]
                };
                scene.push(SceneItem {
                    key: format!("plane:{}", p.name),
                    version: hash_of(&(point, normal)),
                    mesh: Arc::new(GpuMesh::polygon(&poly, normal)),
                    coarse: None,
                    color: colour,
                });
            }
        }
        if self.show_drills {
            for d in &doc.plan.drills {
                let (entry, direction) = self.dragged(ElementKind::Drill, &d.name, d.entry_mm, d.direction);
                let tip = [0, 1, 2].map(|k| entry[k] + direction[k] * d.length_mm);
                let r = d.diameter_mm / 2.0;
                let colour = if selected(ElementKind::Drill, &d.name) {
                    [0.95, 0.55, 0.1, 1.0]
                } else {
                    [self.drill_colour[0], self.drill_colour[1], self.drill_colour[2], 1.0]
                };
                let version = hash_of(&(entry, direction, d.length_mm, d.diameter_mm));
                scene.push(SceneItem {
                    key: format!("drill:{}", d.name),
                    version,
                    mesh: Arc::new(GpuMesh::cylinder(entry, tip, r)),
                    coarse: None,
                    color: colour,
                });
                // Entry (green) and tip (red) marks.
                for (end, colour, tag) in [
                    (entry, [0.2, 0.85, 0.3, 1.0], "entry"),
                    (tip, [0.9, 0.2, 0.2, 1.0], "tip"),
                ] {
                    let a = [0, 1, 2].map(|k| end[k] - direction[k] * 0.3);
                    let b = [0, 1, 2].map(|k| end[k] + direction[k] * 0.3);
                    scene.push(SceneItem {
                        key: format!("drill:{}:{tag}", d.name),
                        version,
                        mesh: Arc::new(GpuMesh::cylinder(a, b, r * 1.8)),
                        coarse: None,
                        color: colour,
                    });
                }
            }
        }
        for st in &doc.plan.structures {
            for (i, w) in st.points_mm.windows(2).enumerate() {
                scene.push(SceneItem {
                    key: format!("structure:{}:{i}", st.name),
                    version: hash_of(&(w[0], w[1], st.radius_mm)),
                    mesh: Arc::new(GpuMesh::cylinder(w[0], w[1], st.radius_mm)),
                    coarse: None,
                    color: [0.95, 0.85, 0.25, 1.0],
                });
            }
        }
        for (i, p) in self.structure_points.iter().enumerate() {
            scene.push(marker(format!("structure-point:{i}"), *p, 0.8, [0.95, 0.85, 0.25, 1.0]));
        }
        for l in &doc.plan.landmarks {
            scene.push(marker(
                format!("landmark:{}", l.name),
                l.point_mm,
                1.0,
                [0.95, 0.85, 0.2, 1.0],
            ));
        }
        self.guide_scene(&mut scene);
        self.flap_scene(&mut scene);
        for (i, p) in self.distance_points.iter().enumerate() {
            scene.push(marker(format!("distance:{i}"), *p, 0.8, [0.3, 0.9, 1.0, 1.0]));
        }
        if let [a, b] = self.distance_points.as_slice() {
            scene.push(SceneItem {
                key: "distance:line".into(),
                version: hash_of(&(a, b)),
                mesh: Arc::new(GpuMesh::cylinder(*a, *b, 0.2)),
                coarse: None,
                color: [0.3, 0.9, 1.0, 1.0],
            });
        }
        if let Some(p) = self.marked_place {
            scene.push(marker("finding-place".into(), p, 1.5, [1.0, 0.2, 0.6, 1.0]));
        }
        scene
    }

    fn view3d(&mut self, ui: &mut egui::Ui, rect: egui::Rect) {
        let response = ui.interact(rect, ui.scope_id().with("view3d"), egui::Sense::click_and_drag());
        self.view3d_rect = rect;
        ui.painter().rect_filled(rect, 0.0, Color32::from_rgb(9, 10, 14));
        let say = |text: &str| {
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                text,
                egui::FontId::proportional(16.0),
                Color32::GRAY,
            );
        };
        let Some(mut camera) = self.camera else {
            say("3D: make or open a bone surface");
            return;
        };
        if !self.has_3d {
            say("The 3D view needs the wgpu renderer");
            return;
        }
        let handles_active = self.footprint_handles(&response, rect) || self.handles(ui, rect, &camera);
        if self.tool != Tool::Navigate && response.clicked_by(egui::PointerButton::Primary) {
            if let Some(pos) = response.interact_pointer_pos() {
                self.place(pos);
            }
        } else if !handles_active {
            view3d::navigate(ui, &response, rect, &mut camera);
        }
        // Moving: the camera changed since the last frame or a drag goes on; then draw fast and come back for a
        // full-quality frame once it stops.
        let moving = self.fast_while_moving && (self.last_camera != Some(camera) || response.dragged());
        if moving {
            ui.ctx().request_repaint();
        }
        self.last_camera = Some(camera);
        self.camera = Some(camera);
        view3d::paint(ui, rect, &camera, self.scene(), moving, self.clip_plane(&camera));
        // Standard views, top right of the view.
        let mut bar = ui.new_child(
            egui::UiBuilder::new()
                .max_rect(rect.shrink(6.0))
                .layout(egui::Layout::right_to_left(egui::Align::Min)),
        );
        if bar.button("Reset").clicked() {
            if let Some(bone) = &self.bone {
                self.camera = Some(Camera::framing(bone.min_mm, bone.max_mm));
            }
        }
        for (name, yaw, pitch) in STANDARD_VIEWS.iter().rev() {
            if bar.button(&name[..1]).on_hover_text(*name).clicked() {
                if let Some(c) = &mut self.camera {
                    c.yaw_deg = *yaw;
                    c.pitch_deg = *pitch;
                }
            }
        }
        // Element labels.
        if let Some(doc) = &self.doc {
            let painter = ui.painter_at(rect);
            for d in &doc.plan.drills {
                if let Some(p) = camera.project(rect, d.entry_mm) {
                    painter.text(
                        p + egui::vec2(6.0, -6.0),
                        egui::Align2::LEFT_BOTTOM,
                        &d.name,
                        egui::FontId::proportional(12.0),
                        Color32::WHITE,
                    );
                }
            }
            for p in &doc.plan.planes {
                if let Some(s) = camera.project(rect, p.point_mm) {
                    painter.text(
                        s + egui::vec2(6.0, -6.0),
                        egui::Align2::LEFT_BOTTOM,
                        &p.name,
                        egui::FontId::proportional(12.0),
                        Color32::from_rgb(150, 200, 255),
                    );
                }
            }
        }
    }

    fn centre(&mut self, ui: &mut egui::Ui) {
        let rect = ui.available_rect_before_wrap();
        ui.allocate_rect(rect, egui::Sense::hover());
        let gap = 2.0;
        let half = |r: egui::Rect, right: bool, bottom: bool| {
            let w = (r.width() - gap) / 2.0;
            let h = (r.height() - gap) / 2.0;
            let min = r.min + egui::vec2(if right { w + gap } else { 0.0 }, if bottom { h + gap } else { 0.0 });
            egui::Rect::from_min_size(min, egui::vec2(w, h))
        };
        let cells: Vec<(Option<Axis>, egui::Rect)> = match self.layout {
            Layout::FourUp => vec![
                (Some(Axis::Axial), half(rect, false, false)),
                (None, half(rect, true, false)),
                (Some(Axis::Coronal), half(rect, false, true)),
                (Some(Axis::Sagittal), half(rect, true, true)),
            ],
            Layout::Only3d => vec![(None, rect)],
            Layout::OnlySlice(a) => vec![(Some(a), rect)],
        };
        if let Some(v) = &mut self.views {
            v.hover = None;
        }
        for (axis, r) in cells {
            match axis {
                None => self.view3d(ui, r),
                Some(axis) => match (&mut self.views, &self.ct) {
                    (Some(views), Some(ct)) => {
                        let overlay = match &self.bone {
                            Some(Bone {
                                mask: Some(mask),
                                segmentation: Some(s),
                                ..
                            }) if params_of(&s.recipe) == self.seg => Overlay::Mask(mask),
                            _ => Overlay::Window {
                                min_hu: self.seg.min_hu,
                                max_hu: self.seg.max_hu,
                                cut_planes: &self.seg.cut_planes,
                                cut_boxes: &self.seg.cut_boxes,
                            },
                        };
                        let marks: Vec<[f64; 3]> = self.marked_place.into_iter().collect();
                        let (planes, drills): (Vec<_>, Vec<_>) = match &self.doc {
                            Some(doc) => (
                                doc.plan.planes.iter().map(|p| (p.point_mm, p.normal)).collect(),
                                doc.plan
                                    .drills
                                    .iter()
                                    .map(|d| {
                                        (
                                            d.entry_mm,
                                            [0, 1, 2].map(|k| d.entry_mm[k] + d.direction[k] * d.length_mm),
                                        )
                                    })
                                    .collect(),
                            ),
                            None => (Vec::new(), Vec::new()),
                        };
                        let layers = slices::Layers {
                            overlay,
                            overlay_version: self.overlay_version,
                            marks_mm: &marks,
                            planes: &planes,
                            drills: &drills,
                        };
                        views.show(ui, r, axis, &ct.volume, &layers);
                    }
                    _ => {
                        ui.painter().rect_filled(r, 0.0, Color32::BLACK);
                        ui.painter().text(
                            r.center(),
                            egui::Align2::CENTER_CENTER,
                            format!("{}: open a CT", axis.name()),
                            egui::FontId::proportional(14.0),
                            Color32::GRAY,
                        );
                    }
                },
            }
        }
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let mut cancel = false;
            if let Some(job) = &self.job {
                let (stage, fraction) = job.status();
                // No spinner: it repaints every frame, and on a software renderer every frame takes the cores from
                // the work (see `jobs::REPAINT_IN_SOFTWARE`). The elapsed time moves instead, at the job's rate.
                ui.ctx().request_repaint_after(job.repaint_every());
                ui.label(format!("{}: {stage} ({:.0} s)", job.label, job.elapsed_s()));
                if let Some(f) = fraction {
                    ui.add(egui::ProgressBar::new(f).desired_width(200.0).show_percentage());
                }
                if job.cancelling() {
                    ui.label("cancelling…");
                } else if ui.button("Cancel").clicked() {
                    cancel = true;
                }
            } else if let Some(m) = self.messages.last() {
                let colour = if m.error {
                    Color32::from_rgb(255, 120, 110)
                } else {
                    ui.visuals().text_color()
                };
                ui.colored_label(colour, &m.text);
            }
            if cancel {
                if let Some(job) = &self.job {
                    job.cancel();
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if let Some(h) = self.views.as_ref().and_then(|v| v.hover) {
                    ui.monospace(format!(
                        "HU {:5}   L {:7.1}  P {:7.1}  S {:7.1} mm   voxel {} {} {}",
                        h.hu, h.lps_mm[0], h.lps_mm[1], h.lps_mm[2], h.voxel[0], h.voxel[1], h.voxel[2]
                    ));
                }
                if let Some(v) = &mut self.views {
                    for (name, w, l) in WINDOW_PRESETS {
                        if ui.small_button(name).clicked() {
                            v.window_hu = w;
                            v.level_hu = l;
                        }
                    }
                    ui.label(format!("W {:.0} L {:.0}", v.window_hu, v.level_hu));
                }
            });
        });
    }

    fn dialogs(&mut self, ctx: &egui::Context) {
        if let Some(text) = self.error_window.clone() {
            let mut open = true;
            egui::Window::new("Problem")
                .collapsible(false)
                .open(&mut open)
                .show(ctx, |ui| {
                    ui.label(&text);
                    if ui.button("OK").clicked() {
                        self.error_window = None;
                    }
                });
            if !open {
                self.error_window = None;
            }
        }
        if let Some(side) = self.recover.clone() {
            egui::Window::new("Autosaved changes")
                .collapsible(false)
                .show(ctx, |ui| {
                    ui.label(format!(
                        "{} holds changes to this plan that were never saved (the application ended before a save).",
                        side.display()
                    ));
                    ui.horizontal(|ui| {
                        if ui.button("Recover").clicked() {
                            self.recover = None;
                            self.recover_autosave(&side);
                        }
                        if ui.button("Discard them").clicked() {
                            self.recover = None;
                            let _ = std::fs::remove_file(&side);
                        }
                    });
                });
        }
        if let Some(confirm) = self.confirm.clone() {
            egui::Window::new("Unsaved changes").collapsible(false).show(ctx, |ui| {
                ui.label("The plan has unsaved changes.");
                ui.horizontal(|ui| {
                    if ui.button("Save").clicked() {
                        self.save_dialog(false);
                        if !self.doc.as_ref().is_some_and(PlanDoc::dirty) {
                            self.confirmed(ctx, confirm.clone());
                        }
                    }
                    if ui.button("Discard").clicked() {
                        if let Some(doc) = &mut self.doc {
                            doc.saved_json = Some(doc.plan.to_json());
                        }
                        self.confirmed(ctx, confirm.clone());
                    }
                    if ui.button("Cancel").clicked() {
                        self.confirm = None;
                    }
                });
            });
        }
    }

    fn confirmed(&mut self, ctx: &egui::Context, confirm: Confirm) {
        self.confirm = None;
        match confirm {
            Confirm::Close => {
                self.close_confirmed = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            Confirm::Replace(Pending::Open(p)) => self.open_now(ctx, p),
            Confirm::Replace(Pending::Demo) => self.open_demo(ctx),
            Confirm::Replace(Pending::NewPlan) => self.new_plan(),
        }
    }

    /// The orbit benchmark (`--orbit-frames N`): true while it runs. Each frame turns the camera by 2 degrees and
    /// records the time since the previous frame began, which covers the whole frame (UI, 3D draw on the GPU or
    /// lavapipe, present).
    fn orbit(&mut self, ctx: &egui::Context) -> bool {
        let wanted = self.start.orbit_frames as usize;
        if wanted == 0 || self.orbit_done {
            return false;
        }
        if self.orbit_ms.len() > wanted {
            // The first interval includes the upload of the meshes: left out.
            self.orbit_running = false;
            self.orbit_done = true;
            let mut times = self.orbit_ms[1..].to_vec();
            times.sort_by(f64::total_cmp);
            let triangles: usize = self.bone.as_ref().map_or(0, |b| b.triangles);
            let ppp = ctx.pixels_per_point();
            eprintln!(
                "orbit: {} frames of {} triangles, 3D view {:.0} x {:.0} px: median {:.1} ms, 90th percentile {:.1} ms, max {:.1} ms",
                times.len(),
                triangles,
                self.view3d_rect.width() * ppp,
                self.view3d_rect.height() * ppp,
                times[times.len() / 2],
                times[times.len() * 9 / 10],
                times[times.len() - 1]
            );
            return false;
        }
        let Some(camera) = &mut self.camera else { return false };
        self.orbit_running = true;
        self.layout = Layout::Only3d;
        self.panels_hidden = true;
        camera.yaw_deg += 2.0;
        ctx.request_repaint();
        true
    }

    /// With `--screenshot`: once the start-up work is done, saves the window as PNG, prints the frame times and
    /// what the bottom bar said, and closes.
    fn startup_screenshot(&mut self, ctx: &egui::Context) {
        // The integration reads the pixels back after a later frame is drawn and asks for no frame itself: keep
        // drawing until the callback has run (an idle window under Xvfb would otherwise wait for ever).
        if self.screenshot_requested {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
            return;
        }
        if self.screenshot_requested || self.busy() || self.start_surface_pending || self.eval_stale {
            return;
        }
        if let Some(name) = self.start.select_guide.take() {
            let guide = self
                .doc
                .as_ref()
                .and_then(|d| d.plan.guides.iter().find(|g| g.name == name).cloned());
            match guide {
                Some(g) => {
                    self.layout = Layout::Only3d;
                    self.look_along(guides::footprint_centre(&g), g.seating_direction);
                    if let Some(camera) = &mut self.camera {
                        camera.distance_mm = camera.distance_mm.min(180.0);
                    }
                    self.selected = Some((ElementKind::Guide, name));
                    self.build_guides(ctx);
                }
                None => self.error(format!("--select-guide {name}: the plan has no guide of that name")),
            }
            return;
        }
        if std::mem::take(&mut self.start.review) {
            self.review = true;
            self.tool = Tool::Navigate;
            return;
        }
        if self.startup_s.is_none() {
            self.startup_s = Some(self.created.elapsed().as_secs_f64());
        }
        if self.orbit(ctx) {
            return;
        }
        let Some(path) = self.start.screenshot.clone() else {
            return;
        };
        self.screenshot_requested = true;
        self.close_confirmed = true;
        let stats = self.frame_stats.clone();
        let startup_s = self.startup_s.unwrap_or_default();
        let messages = self.messages.clone();
        let ctx2 = ctx.clone();
        ctx.request_screenshot(move |image| {
            match write_png(&path, &image) {
                Ok(()) => eprintln!(
                    "screenshot {} ({}x{}); start-up work {startup_s:.2} s; longest frame {:.1} ms, {:.1} ms while work ran, {} frames",
                    path.display(),
                    image.size[0],
                    image.size[1],
                    stats.longest_ms,
                    stats.longest_during_job_ms,
                    stats.frames
                ),
                Err(e) => eprintln!("error: screenshot {}: {e}", path.display()),
            }
            for m in &messages {
                eprintln!("{}{}", if m.error { "error: " } else { "" }, m.text);
            }
            ctx2.send_viewport_cmd(egui::ViewportCommand::Close);
            ctx2.request_repaint();
        });
    }
}

impl eframe::App for GuidesmithApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        if self.orbit_running {
            // Start to start: the whole previous frame (UI, 3D draw, present).
            if let Some(previous) = self.frame_started {
                self.orbit_ms.push((started - previous).as_secs_f64() * 1e3);
            }
        }
        if ctx.input(|i| i.viewport().close_requested())
            && !self.close_confirmed
            && self.doc.as_ref().is_some_and(PlanDoc::dirty)
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.confirm = Some(Confirm::Close);
        }
        self.poll_jobs(&ctx);
        self.update_contacts();
        self.update_flap_preview(&ctx);
        self.shortcuts(&ctx);
        if self.last_autosave.elapsed() > AUTOSAVE_EVERY {
            self.autosave_now();
        }
        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        if !self.panels_hidden {
            egui::Panel::left("case")
                .resizable(true)
                .default_size(300.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| self.case_panel(ui));
                });
            egui::Panel::right("plan")
                .resizable(true)
                .default_size(360.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| self.plan_panel(ui));
                });
        }
        egui::CentralPanel::default().show(ui, |ui| self.centre(ui));
        self.dialogs(&ctx);
        self.add_guide_window(&ctx);
        self.approve_window(&ctx);
        self.startup_screenshot(&ctx);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        self.frame_stats.frames += 1;
        self.frame_stats.longest_ms = self.frame_stats.longest_ms.max(ms);
        if self.job.is_some() {
            self.frame_stats.longest_during_job_ms = self.frame_stats.longest_during_job_ms.max(ms);
        }
        self.frame_started = Some(started);
    }
}

/// The demo CT as DICOM files, written once into the user's cache folder (`$XDG_CACHE_HOME` or `~/.cache`, else
/// the temporary folder) and reused: the phantom is deterministic, so every run writes the same files, and a plan
/// saved on the demo opens again later (its CT hash is checked). Written beside and renamed, so a crash leaves no
/// half-written series under the final name.
fn demo_ct_dir() -> Result<PathBuf, String> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("guidesmith");
    let dir = cache.join("demo-ct");
    if dir.is_dir() {
        return Ok(dir);
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = cache.join(format!("demo-ct.partial-{}-{n}", std::process::id()));
    let (phantom, spec) = case::demo::demo_ct();
    guidesmith::synth::write_series(&phantom, &spec, &partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    if std::fs::rename(&partial, &dir).is_err() {
        // Another instance finished first: use its copy.
        let _ = std::fs::remove_dir_all(&partial);
        if !dir.is_dir() {
            return Err(format!("{}: the demo CT could not be written", dir.display()));
        }
    }
    Ok(dir)
}

/// The segmentation panel's settings for a recipe (the parts the panel shows).
fn params_of(recipe: &SegmentRecipe) -> SegmentParams {
    SegmentParams {
        min_hu: recipe.hu.min_hu(),
        max_hu: recipe.hu.max_hu(),
        keep_largest: matches!(recipe.keep, Keep::Largest),
        seed_mm: match &recipe.keep {
            Keep::Containing { seeds_mm } => seeds_mm.first().copied(),
            _ => None,
        },
        fill_cavities: recipe.fill_cavities,
        close_mm: recipe.close_mm,
        cut_planes: recipe.cut_planes.clone(),
        cut_boxes: recipe.cut_boxes.clone(),
    }
}

/// A mark at `p`: a short vertical cylinder of radius and half-height `size_mm`.
fn marker(key: String, p: [f64; 3], size_mm: f64, color: [f32; 4]) -> SceneItem {
    SceneItem {
        key,
        version: hash_of(&(p, size_mm)),
        mesh: Arc::new(GpuMesh::cylinder(
            [p[0], p[1], p[2] - size_mm],
            [p[0], p[1], p[2] + size_mm],
            size_mm,
        )),
        coarse: None,
        color,
    }
}

/// The plan element a finding names, if the plan has one of that name.
fn element_of(plan: &Plan, f: &Finding) -> Option<(ElementKind, String)> {
    let name = f.element.as_str();
    let kind = if plan.planes.iter().any(|p| p.name == name) {
        ElementKind::Plane
    } else if plan.drills.iter().any(|d| d.name == name) {
        ElementKind::Drill
    } else if plan.landmarks.iter().any(|l| l.name == name) {
        ElementKind::Landmark
    } else if plan.structures.iter().any(|s| s.name == name) {
        ElementKind::Structure
    } else {
        return None;
    };
    Some((kind, name.to_string()))
}

fn json_list(v: &[f64; 3]) -> String {
    format!("[{}, {}, {}]", v[0], v[1], v[2])
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn hash_of<T: std::fmt::Debug>(value: &T) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{value:?}").hash(&mut h);
    h.finish()
}

fn write_png(path: &Path, image: &egui::ColorImage) -> anyhow::Result<()> {
    let [w, h] = image.size;
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(image.as_raw())?;
    }
    guidesmith::atomic::write_atomic(path, |f| std::io::Write::write_all(f, &bytes))?;
    Ok(())
}

fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    a.map(|x| x * s)
}
