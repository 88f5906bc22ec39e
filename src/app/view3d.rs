//! The 3D view: bone, planes and drills drawn with wgpu, orbited, panned and zoomed as in 3D Slicer, and picked with
//! a ray against the bone's BVH.
//!
//! Why an offscreen target: the scene is drawn in the paint callback's `prepare` into its own colour (4x MSAA,
//! resolved) and depth texture, and `paint` copies the resolved image into egui's pass. egui's pass has no depth
//! attachment (in kittest never), so this is what makes depth testing work the same in the window and in the
//! snapshot tests. Meshes are uploaded once per version; a frame only writes one small uniform block per object.
//!
//! Lighting as the review renders of `docs/renders/`: a head light with an ambient term, both sides lit (planes are
//! seen from either side).

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui;
use eframe::egui_wgpu::{self, wgpu};
use guidesmith::mesh::Mesh;
use nalgebra::{Matrix4, Perspective3, Point3, Vector3, Vector4};
use wgpu::util::DeviceExt as _;

const COLOR_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;
const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;
const MSAA_SAMPLES: u32 = 4;

const MESH_WGSL: &str = r"
struct U { clip_from_world: mat4x4<f32>, light_dir: vec4<f32>, color: vec4<f32>, clip: vec4<f32> };
@group(0) @binding(0) var<uniform> u: U;
struct VOut {
    @builtin(position) pos: vec4<f32>, @location(0) n: vec3<f32>, @location(1) w: vec3<f32>, @location(2) tint: vec3<f32>
};
@vertex fn vs_main(@location(0) p: vec3<f32>, @location(1) n: vec3<f32>, @location(2) tint: vec3<f32>) -> VOut {
    var o: VOut; o.pos = u.clip_from_world * vec4<f32>(p, 1.0); o.n = n; o.w = p; o.tint = tint; return o;
}
@fragment fn fs_main(in: VOut, @builtin(front_facing) front: bool) -> @location(0) vec4<f32> {
    let clipping = dot(u.clip.xyz, u.clip.xyz) > 0.0;
    if (clipping && dot(u.clip.xyz, in.w) > u.clip.w) { discard; }
    let l = abs(dot(normalize(in.n), normalize(u.light_dir.xyz)));
    let base = u.color.rgb * in.tint;
    // Behind the clipping plane the inside of a solid shows its back faces: flat and dark, so the cut reads as one.
    if (clipping && !front) { return vec4<f32>(base * 0.35, u.color.a); }
    let c = base * (0.25 + 0.75 * l) + vec3<f32>(0.15) * pow(l, 24.0);
    return vec4<f32>(c, u.color.a);
}";

const BLIT_WGSL: &str = r"
@group(0) @binding(0) var t: texture_2d<f32>;
@group(0) @binding(1) var s: sampler;
struct VOut { @builtin(position) pos: vec4<f32>, @location(0) uv: vec2<f32> };
@vertex fn vs_main(@builtin(vertex_index) i: u32) -> VOut {
    let uv = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    var o: VOut; o.pos = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0); o.uv = uv; return o;
}
fn gamma_from_linear(c: vec3<f32>) -> vec3<f32> {
    return select(1.055 * pow(c, vec3<f32>(1.0 / 2.4)) - 0.055, c * 12.92, c < vec3<f32>(0.0031308));
}
@fragment fn fs_gamma(in: VOut) -> @location(0) vec4<f32> {
    return vec4<f32>(gamma_from_linear(textureSample(t, s, in.uv).rgb), 1.0);
}
@fragment fn fs_linear(in: VOut) -> @location(0) vec4<f32> { return vec4<f32>(textureSample(t, s, in.uv).rgb, 1.0); }
";

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Vertex {
    pos: [f32; 3],
    normal: [f32; 3],
    /// Multiplies the object's colour (white: the colour itself; the contact-gap map of a guide's underside).
    tint: [f32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniforms {
    clip_from_world: [[f32; 4]; 4],
    light_dir: [f32; 4],
    color: [f32; 4],
    /// The clipping plane: fragments with `dot(xyz, p) > w` are not drawn; all zero: none.
    clip: [f32; 4],
}

/// No tint.
const WHITE: [f32; 3] = [1.0; 3];

/// Triangles ready for the GPU (f32, per-vertex normals), patient LPS mm.
pub struct GpuMesh {
    vertices: Vec<Vertex>,
    indices: Vec<u32>,
}

/// Each vertex's normal, the area-weighted sum of its triangles' normals (not unit length).
pub fn vertex_normals(mesh: &Mesh) -> Vec<[f64; 3]> {
    let mut normals = vec![[0.0f64; 3]; mesh.positions.len()];
    for t in &mesh.triangles {
        let [a, b, c] = t.map(|v| mesh.positions[v as usize]);
        let n = cross(sub(b, a), sub(c, a));
        for &v in t {
            for k in 0..3 {
                normals[v as usize][k] += n[k];
            }
        }
    }
    normals
}

impl GpuMesh {
    /// A mesh with area-weighted vertex normals (smooth shading of a closed surface).
    pub fn smooth(mesh: &Mesh) -> GpuMesh {
        let normals = vertex_normals(mesh);
        let vertices = mesh
            .positions
            .iter()
            .zip(&normals)
            .map(|(p, n)| {
                let l = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(1e-30);
                Vertex {
                    pos: p.map(|x| x as f32),
                    normal: n.map(|x| (x / l) as f32),
                    tint: WHITE,
                }
            })
            .collect();
        GpuMesh {
            vertices,
            indices: mesh.triangles.iter().flatten().copied().collect(),
        }
    }

    /// [`GpuMesh::smooth`] with a tint per vertex (multiplying the object's colour).
    pub fn tinted(mesh: &Mesh, tints: &[[f32; 3]]) -> GpuMesh {
        let mut g = GpuMesh::smooth(mesh);
        for (v, t) in g.vertices.iter_mut().zip(tints) {
            v.tint = *t;
        }
        g
    }

    /// A coarse copy of `mesh` with about `target` triangles for frames while the view moves (vertex clustering:
    /// the vertices of each cubic cell merge at their mean, triangles that collapse are dropped), or `None` when the
    /// mesh is small already. For display only: the copy is not checked and never leaves the view.
    pub fn coarse(mesh: &Mesh, target: usize) -> Option<GpuMesh> {
        if mesh.triangles.len() <= target || target == 0 {
            return None;
        }
        let area: f64 = mesh
            .triangles
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|v| mesh.positions[v as usize]);
                0.5 * norm(cross(sub(b, a), sub(c, a)))
            })
            .sum();
        // A surface meshed at cell size c has about 2 A / c^2 triangles.
        let cell = (2.0 * area / target as f64).sqrt().max(1e-6);
        let bb = mesh.bounding_box()?;
        let mut cells: HashMap<[i64; 3], u32> = HashMap::new();
        let mut sums: Vec<([f64; 3], u32)> = Vec::new();
        let remap: Vec<u32> = mesh
            .positions
            .iter()
            .map(|p| {
                let key = [0, 1, 2].map(|k| ((p[k] - bb.min_mm[k]) / cell).floor() as i64);
                let id = *cells.entry(key).or_insert_with(|| {
                    sums.push(([0.0; 3], 0));
                    (sums.len() - 1) as u32
                });
                let s = &mut sums[id as usize];
                s.0 = [0, 1, 2].map(|k| s.0[k] + p[k]);
                s.1 += 1;
                id
            })
            .collect();
        let positions = sums.iter().map(|(s, n)| s.map(|x| x / *n as f64)).collect();
        let triangles = mesh
            .triangles
            .iter()
            .map(|t| t.map(|v| remap[v as usize]))
            .filter(|t| t[0] != t[1] && t[1] != t[2] && t[0] != t[2])
            .collect();
        Some(GpuMesh::smooth(&Mesh { positions, triangles }))
    }

    /// A flat polygon (convex, in order) with its normal.
    pub fn polygon(points: &[[f64; 3]], normal: [f64; 3]) -> GpuMesh {
        let vertices = points
            .iter()
            .map(|p| Vertex {
                pos: p.map(|x| x as f32),
                normal: normal.map(|x| x as f32),
                tint: WHITE,
            })
            .collect();
        let indices = (1..points.len().saturating_sub(1) as u32)
            .flat_map(|i| [0, i, i + 1])
            .collect();
        GpuMesh { vertices, indices }
    }

    /// A closed cylinder from `a` to `b` of radius `r` (24 sides).
    pub fn cylinder(a: [f64; 3], b: [f64; 3], r: f64) -> GpuMesh {
        let axis = sub(b, a);
        let len = norm(axis).max(1e-9);
        let d = axis.map(|x| x / len);
        let helper = if d[0].abs() < 0.9 {
            [1.0, 0.0, 0.0]
        } else {
            [0.0, 1.0, 0.0]
        };
        let u = normalize(cross(d, helper));
        let v = cross(d, u);
        const SIDES: u32 = 24;
        let mut vertices = Vec::new();
        let mut indices = Vec::new();
        for s in 0..SIDES {
            let ang = s as f64 / SIDES as f64 * std::f64::consts::TAU;
            let n = [0, 1, 2].map(|k| u[k] * ang.cos() + v[k] * ang.sin());
            for end in [a, b] {
                vertices.push(Vertex {
                    pos: [0, 1, 2].map(|k| (end[k] + n[k] * r) as f32),
                    normal: n.map(|x| x as f32),
                    tint: WHITE,
                });
            }
            let (i0, i1) = (2 * s, 2 * ((s + 1) % SIDES));
            indices.extend([i0, i1, i0 + 1, i1, i1 + 1, i0 + 1]);
        }
        for (end, sign) in [(a, -1.0), (b, 1.0)] {
            let centre = vertices.len() as u32;
            vertices.push(Vertex {
                pos: end.map(|x| x as f32),
                normal: d.map(|x| (x * sign) as f32),
                tint: WHITE,
            });
            for s in 0..SIDES {
                let ang = s as f64 / SIDES as f64 * std::f64::consts::TAU;
                vertices.push(Vertex {
                    pos: [0, 1, 2].map(|k| (end[k] + (u[k] * ang.cos() + v[k] * ang.sin()) * r) as f32),
                    normal: d.map(|x| (x * sign) as f32),
                    tint: WHITE,
                });
            }
            for s in 0..SIDES {
                indices.extend([centre, centre + 1 + s, centre + 1 + (s + 1) % SIDES]);
            }
        }
        GpuMesh { vertices, indices }
    }
}

/// A bone's meshes for the view: full, and coarse for frames while the view moves (for large bones).
pub struct GpuBone {
    pub full: GpuMesh,
    pub coarse: Option<GpuMesh>,
}

/// Triangles drawn while the view moves, at most (a software rasteriser spends its time per vertex).
const MOVING_TRIANGLES: usize = 150_000;

impl GpuBone {
    pub fn of(mesh: &Mesh) -> GpuBone {
        GpuBone {
            full: GpuMesh::smooth(mesh),
            coarse: GpuMesh::coarse(mesh, MOVING_TRIANGLES),
        }
    }
}

/// One object of the scene.
#[derive(Clone)]
pub struct SceneItem {
    /// Stable key (e.g. "bone", "plane:osteotomy-1").
    pub key: String,
    /// Changes whenever `mesh` does, so the GPU copy is replaced.
    pub version: u64,
    pub mesh: Arc<GpuMesh>,
    /// A coarser copy drawn instead while the view moves.
    pub coarse: Option<Arc<GpuMesh>>,
    /// Linear RGB and opacity; below 1 the object is drawn after the opaque ones without writing depth.
    pub color: [f32; 4],
}

/// Orbit camera in patient space (LPS, superior up).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    pub target_mm: [f64; 3],
    /// Angle of the eye about the superior axis from +L, degrees.
    pub yaw_deg: f64,
    /// Elevation of the eye, degrees.
    pub pitch_deg: f64,
    pub distance_mm: f64,
}

/// The standard views: (name, yaw, pitch).
pub const STANDARD_VIEWS: [(&str, f64, f64); 6] = [
    ("Anterior", -90.0, 0.0),
    ("Posterior", 90.0, 0.0),
    ("Left", 0.0, 0.0),
    ("Right", 180.0, 0.0),
    ("Superior", -90.0, 89.9),
    ("Inferior", -90.0, -89.9),
];

const FOV_DEG: f64 = 30.0;

impl Camera {
    /// An anterior view of a scene within `min..max`.
    pub fn framing(min: [f64; 3], max: [f64; 3]) -> Camera {
        let centre = [0, 1, 2].map(|k| 0.5 * (min[k] + max[k]));
        let radius = 0.5 * norm(sub(max, min)).max(1.0);
        Camera {
            target_mm: centre,
            yaw_deg: -90.0,
            pitch_deg: 10.0,
            distance_mm: radius / (FOV_DEG.to_radians() / 2.0).sin() * 1.1,
        }
    }

    pub fn eye_mm(&self) -> [f64; 3] {
        let (y, p) = (self.yaw_deg.to_radians(), self.pitch_deg.to_radians());
        let dir = [y.cos() * p.cos(), y.sin() * p.cos(), p.sin()];
        [0, 1, 2].map(|k| self.target_mm[k] + dir[k] * self.distance_mm)
    }

    /// `view_from_world` and `clip_from_view` (wgpu depth range) for a view of `aspect` (width / height).
    pub fn view_and_clip(&self, aspect: f64) -> (Matrix4<f64>, Matrix4<f64>) {
        let eye = Point3::from(self.eye_mm());
        let target = Point3::from(self.target_mm);
        let view = Matrix4::look_at_rh(&eye, &target, &Vector3::z());
        let near = (self.distance_mm * 0.05).max(0.1);
        let proj = Perspective3::new(aspect.max(1e-3), FOV_DEG.to_radians(), near, self.distance_mm * 20.0);
        #[rustfmt::skip]
        let wgpu_from_gl = Matrix4::new(1.0, 0.0, 0.0, 0.0,  0.0, 1.0, 0.0, 0.0,  0.0, 0.0, 0.5, 0.5,  0.0, 0.0, 0.0, 1.0);
        (view, wgpu_from_gl * proj.as_matrix())
    }

    /// `clip_from_world` for a view of `aspect` (width / height), wgpu depth range.
    pub fn clip_from_world(&self, aspect: f64) -> Matrix4<f64> {
        let (view, clip) = self.view_and_clip(aspect);
        clip * view
    }

    /// The ray through `pos` in a view drawn in `rect`: origin (the eye) and unit direction, LPS mm.
    pub fn ray(&self, rect: egui::Rect, pos: egui::Pos2) -> ([f64; 3], [f64; 3]) {
        let m = self.clip_from_world((rect.width() / rect.height()) as f64);
        let inv = m.try_inverse().unwrap_or_else(Matrix4::identity);
        let x = ((pos.x - rect.left()) / rect.width() * 2.0 - 1.0) as f64;
        let y = (1.0 - (pos.y - rect.top()) / rect.height() * 2.0) as f64;
        let unproject = |z: f64| {
            let p = inv * Vector4::new(x, y, z, 1.0);
            [p.x / p.w, p.y / p.w, p.z / p.w]
        };
        let (a, b) = (unproject(0.0), unproject(1.0));
        (self.eye_mm(), normalize(sub(b, a)))
    }

    /// Where `p` appears in a view drawn in `rect`, if in front of the eye.
    pub fn project(&self, rect: egui::Rect, p: [f64; 3]) -> Option<egui::Pos2> {
        let m = self.clip_from_world((rect.width() / rect.height()) as f64);
        let c = m * Vector4::new(p[0], p[1], p[2], 1.0);
        (c.w > 0.0).then(|| {
            egui::Pos2::new(
                rect.left() + ((c.x / c.w + 1.0) * 0.5) as f32 * rect.width(),
                rect.top() + ((1.0 - c.y / c.w) * 0.5) as f32 * rect.height(),
            )
        })
    }
}

struct GpuItem {
    version: u64,
    vertices: wgpu::Buffer,
    indices: wgpu::Buffer,
    index_count: u32,
    uniforms: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

struct Targets {
    size_px: [u32; 2],
    msaa_view: wgpu::TextureView,
    resolved_view: wgpu::TextureView,
    depth_view: wgpu::TextureView,
    blit_bind_group: wgpu::BindGroup,
}

/// GPU state of the view, kept in egui_wgpu's callback resources.
pub struct View3dResources {
    /// Opaque and blended pipelines for 4x MSAA (still frames) and 1 sample (frames while the view moves).
    opaque_pipeline: [wgpu::RenderPipeline; 2],
    blend_pipeline: [wgpu::RenderPipeline; 2],
    blit_pipeline: wgpu::RenderPipeline,
    uniform_layout: wgpu::BindGroupLayout,
    blit_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    items: HashMap<String, GpuItem>,
    /// Full resolution with MSAA, and half resolution without, for frames while the view moves.
    targets: [Option<Targets>; 2],
    /// Which of the two the last frame drew into.
    drawn: usize,
}

/// Builds the pipelines once, with the application's render state (eframe's or the test harness's).
pub fn install(rs: &egui_wgpu::RenderState) {
    let device = &rs.device;
    let mesh_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("view3d_mesh"),
        source: wgpu::ShaderSource::Wgsl(MESH_WGSL.into()),
    });
    let blit_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("view3d_blit"),
        source: wgpu::ShaderSource::Wgsl(BLIT_WGSL.into()),
    });
    let uniform_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("view3d_uniforms"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }],
    });
    let blit_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("view3d_blit"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    multisampled: false,
                    sample_type: wgpu::TextureSampleType::Float { filterable: true },
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                count: None,
            },
        ],
    });
    let mesh_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("view3d_mesh"),
        bind_group_layouts: &[Some(&uniform_layout)],
        immediate_size: 0,
    });
    let mesh_pipeline = |blend: bool, samples: u32| {
        device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some(if blend { "view3d_blend" } else { "view3d_opaque" }),
            layout: Some(&mesh_layout),
            vertex: wgpu::VertexState {
                module: &mesh_module,
                entry_point: Some("vs_main"),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: size_of::<Vertex>() as u64,
                    step_mode: wgpu::VertexStepMode::Vertex,
                    attributes: &wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x3, 2 => Float32x3],
                })],
                compilation_options: Default::default(),
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: Some(wgpu::DepthStencilState {
                format: DEPTH_FORMAT,
                depth_write_enabled: Some(!blend),
                depth_compare: Some(wgpu::CompareFunction::Less),
                stencil: Default::default(),
                bias: Default::default(),
            }),
            multisample: wgpu::MultisampleState {
                count: samples,
                ..Default::default()
            },
            fragment: Some(wgpu::FragmentState {
                module: &mesh_module,
                entry_point: Some("fs_main"),
                targets: &[Some(wgpu::ColorTargetState {
                    format: COLOR_FORMAT,
                    blend: blend.then_some(wgpu::BlendState::ALPHA_BLENDING),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
                compilation_options: Default::default(),
            }),
            multiview_mask: None,
            cache: None,
        })
    };
    let opaque_pipeline = [mesh_pipeline(false, MSAA_SAMPLES), mesh_pipeline(false, 1)];
    let blend_pipeline = [mesh_pipeline(true, MSAA_SAMPLES), mesh_pipeline(true, 1)];
    // Must match egui's own pass: its target format, no depth, no MSAA.
    let blit_pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("view3d_blit"),
        layout: Some(&device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("view3d_blit"),
            bind_group_layouts: &[Some(&blit_layout)],
            immediate_size: 0,
        })),
        vertex: wgpu::VertexState {
            module: &blit_module,
            entry_point: Some("vs_main"),
            buffers: &[],
            compilation_options: Default::default(),
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module: &blit_module,
            entry_point: Some(if rs.target_format.is_srgb() {
                "fs_linear"
            } else {
                "fs_gamma"
            }),
            targets: &[Some(rs.target_format.into())],
            compilation_options: Default::default(),
        }),
        multiview_mask: None,
        cache: None,
    });
    let resources = View3dResources {
        opaque_pipeline,
        blend_pipeline,
        blit_pipeline,
        uniform_layout,
        blit_layout,
        // Linear: the half-resolution frames are scaled up.
        sampler: device.create_sampler(&wgpu::SamplerDescriptor {
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        }),
        items: HashMap::new(),
        targets: [None, None],
        drawn: 0,
    };
    rs.renderer.write().callback_resources.insert(resources);
}

impl View3dResources {
    /// The targets of `which` (0: full, MSAA; 1: moving, one sample) at `size_px`.
    fn ensure_targets(&mut self, device: &wgpu::Device, which: usize, size_px: [u32; 2]) {
        if self.targets[which].as_ref().is_some_and(|t| t.size_px == size_px) {
            return;
        }
        let samples = if which == 0 { MSAA_SAMPLES } else { 1 };
        let make = |label, format, samples, usage| {
            device
                .create_texture(&wgpu::TextureDescriptor {
                    label: Some(label),
                    size: wgpu::Extent3d {
                        width: size_px[0],
                        height: size_px[1],
                        depth_or_array_layers: 1,
                    },
                    mip_level_count: 1,
                    sample_count: samples,
                    dimension: wgpu::TextureDimension::D2,
                    format,
                    usage,
                    view_formats: &[],
                })
                .create_view(&Default::default())
        };
        let attach = wgpu::TextureUsages::RENDER_ATTACHMENT;
        let resolved_view = make(
            "view3d_resolved",
            COLOR_FORMAT,
            1,
            attach | wgpu::TextureUsages::TEXTURE_BINDING,
        );
        let blit_bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("view3d_blit"),
            layout: &self.blit_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::TextureView(&resolved_view),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Sampler(&self.sampler),
                },
            ],
        });
        self.targets[which] = Some(Targets {
            size_px,
            msaa_view: make("view3d_msaa", COLOR_FORMAT, samples, attach),
            depth_view: make("view3d_depth", DEPTH_FORMAT, samples, attach),
            resolved_view,
            blit_bind_group,
        });
    }

    /// Uploads what changed: each item's mesh under its key, its coarse copy under `key#coarse`.
    fn sync_items(&mut self, device: &wgpu::Device, scene: &[SceneItem]) {
        let wanted: Vec<(String, u64, &GpuMesh)> = scene
            .iter()
            .flat_map(|item| {
                let full = (item.key.clone(), item.version, item.mesh.as_ref());
                let coarse = item
                    .coarse
                    .as_ref()
                    .map(|c| (coarse_key(&item.key), item.version, c.as_ref()));
                std::iter::once(full).chain(coarse)
            })
            .collect();
        self.items.retain(|k, _| wanted.iter().any(|(w, _, _)| w == k));
        for (key, version, mesh) in wanted {
            if self.items.get(&key).is_some_and(|g| g.version == version) {
                continue;
            }
            let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("view3d_item_uniforms"),
                size: size_of::<Uniforms>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("view3d_item"),
                layout: &self.uniform_layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniforms.as_entire_binding(),
                }],
            });
            // wgpu refuses empty buffers; an empty mesh draws nothing.
            let vertex_bytes: &[u8] = if mesh.vertices.is_empty() {
                &[0; size_of::<Vertex>()]
            } else {
                bytemuck::cast_slice(&mesh.vertices)
            };
            let index_bytes: &[u8] = if mesh.indices.is_empty() {
                &[0; 4]
            } else {
                bytemuck::cast_slice(&mesh.indices)
            };
            self.items.insert(
                key,
                GpuItem {
                    version,
                    vertices: device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("view3d_vertices"),
                        contents: vertex_bytes,
                        usage: wgpu::BufferUsages::VERTEX,
                    }),
                    indices: device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("view3d_indices"),
                        contents: index_bytes,
                        usage: wgpu::BufferUsages::INDEX,
                    }),
                    index_count: mesh.indices.len() as u32,
                    uniforms,
                    bind_group,
                },
            );
        }
    }
}

/// One frame of the view: the scene and its camera (the callback is not given the rect in `prepare`).
struct View3dCallback {
    size_px: [u32; 2],
    /// The view is moving: half resolution, no MSAA.
    moving: bool,
    clip_from_world: [[f32; 4]; 4],
    light_dir: [f32; 4],
    clip: [f32; 4],
    scene: Vec<SceneItem>,
}

impl View3dCallback {
    /// The GPU copy an item is drawn from this frame.
    fn key_of(&self, item: &SceneItem) -> String {
        if self.moving && item.coarse.is_some() {
            coarse_key(&item.key)
        } else {
            item.key.clone()
        }
    }
}

fn coarse_key(key: &str) -> String {
    format!("{key}#coarse")
}

impl egui_wgpu::CallbackTrait for View3dCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(r) = resources.get_mut::<View3dResources>() else {
            return Vec::new();
        };
        let which = usize::from(self.moving);
        let size_px = if self.moving {
            self.size_px.map(|x| x.div_ceil(2).max(1))
        } else {
            self.size_px
        };
        r.ensure_targets(device, which, size_px);
        r.drawn = which;
        r.sync_items(device, &self.scene);
        for item in &self.scene {
            if let Some(g) = r.items.get(&self.key_of(item)) {
                let u = Uniforms {
                    clip_from_world: self.clip_from_world,
                    light_dir: self.light_dir,
                    color: item.color,
                    clip: self.clip,
                };
                queue.write_buffer(&g.uniforms, 0, bytemuck::bytes_of(&u));
            }
        }
        let Some(t) = r.targets[which].as_ref() else {
            return Vec::new();
        };
        // One sample: draw straight into the texture the blit reads.
        let (view, resolve) = if self.moving {
            (&t.resolved_view, None)
        } else {
            (&t.msaa_view, Some(&t.resolved_view))
        };
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("view3d"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view,
                resolve_target: resolve,
                depth_slice: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color {
                        r: 0.035,
                        g: 0.04,
                        b: 0.055,
                        a: 1.0,
                    }),
                    store: if self.moving {
                        wgpu::StoreOp::Store
                    } else {
                        wgpu::StoreOp::Discard
                    },
                },
            })],
            depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                view: &t.depth_view,
                depth_ops: Some(wgpu::Operations {
                    load: wgpu::LoadOp::Clear(1.0),
                    store: wgpu::StoreOp::Discard,
                }),
                stencil_ops: None,
            }),
            ..Default::default()
        });
        for blend in [false, true] {
            pass.set_pipeline(if blend {
                &r.blend_pipeline[which]
            } else {
                &r.opaque_pipeline[which]
            });
            for item in self.scene.iter().filter(|i| (i.color[3] < 1.0) == blend) {
                let Some(g) = r.items.get(&self.key_of(item)) else {
                    continue;
                };
                if g.index_count == 0 {
                    continue;
                }
                pass.set_bind_group(0, &g.bind_group, &[]);
                pass.set_vertex_buffer(0, g.vertices.slice(..));
                pass.set_index_buffer(g.indices.slice(..), wgpu::IndexFormat::Uint32);
                pass.draw_indexed(0..g.index_count, 0, 0..1);
            }
        }
        drop(pass);
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some((r, t)) = resources
            .get::<View3dResources>()
            .and_then(|r| r.targets[r.drawn].as_ref().map(|t| (r, t)))
        else {
            return;
        };
        render_pass.set_pipeline(&r.blit_pipeline);
        render_pass.set_bind_group(0, &t.blit_bind_group, &[]);
        render_pass.draw(0..3, 0..1);
    }
}

/// Queues the scene for drawing in `rect`; `moving`: the view moves this frame (drawn at half resolution without
/// MSAA, which a software rasteriser needs to keep up; the next still frame is full quality). `clip`: a point and a
/// normal; what lies on the normal's side of that plane is not drawn.
pub fn paint(
    ui: &egui::Ui,
    rect: egui::Rect,
    camera: &Camera,
    scene: Vec<SceneItem>,
    moving: bool,
    clip: Option<([f64; 3], [f64; 3])>,
) {
    let ppp = ui.ctx().pixels_per_point();
    let size_px = [
        (rect.width() * ppp).round().max(1.0) as u32,
        (rect.height() * ppp).round().max(1.0) as u32,
    ];
    let m = camera.clip_from_world((rect.width() / rect.height().max(1.0)) as f64);
    let light = normalize(sub(camera.eye_mm(), camera.target_mm));
    ui.painter().add(egui_wgpu::Callback::new_paint_callback(
        rect,
        View3dCallback {
            size_px,
            moving,
            clip_from_world: m.cast::<f32>().into(),
            light_dir: [light[0] as f32, light[1] as f32, light[2] as f32, 0.0],
            clip: clip.map_or([0.0; 4], |(p, n)| {
                let d = n[0] * p[0] + n[1] * p[1] + n[2] * p[2];
                [n[0] as f32, n[1] as f32, n[2] as f32, d as f32]
            }),
            scene,
        },
    ));
}

/// Orbit (left drag), pan (right or middle drag) and zoom to the cursor (wheel) on `response`.
pub fn navigate(ui: &egui::Ui, response: &egui::Response, rect: egui::Rect, camera: &mut Camera) {
    if response.dragged_by(egui::PointerButton::Primary) {
        let d = response.drag_delta();
        camera.yaw_deg -= d.x as f64 * 0.5;
        camera.pitch_deg = (camera.pitch_deg + d.y as f64 * 0.5).clamp(-89.9, 89.9);
    }
    if response.dragged_by(egui::PointerButton::Secondary) || response.dragged_by(egui::PointerButton::Middle) {
        let d = response.drag_delta();
        // One point of drag moves the target by the size of one point at the target's depth.
        let mm_per_point = 2.0 * camera.distance_mm * (FOV_DEG.to_radians() / 2.0).tan() / rect.height() as f64;
        let forward = normalize(sub(camera.target_mm, camera.eye_mm()));
        let right = normalize(cross(forward, [0.0, 0.0, 1.0]));
        let up = cross(right, forward);
        for k in 0..3 {
            camera.target_mm[k] += (-right[k] * d.x as f64 + up[k] * d.y as f64) * mm_per_point;
        }
    }
    if response.hovered() {
        let scroll = super::slices::wheel_steps(ui) as f64 * 40.0;
        if scroll != 0.0 {
            let factor = (-scroll * 0.002).exp().clamp(0.5, 2.0);
            // Zoom to the cursor: the target moves toward the point under it on the target's depth plane.
            if let Some(pos) = response.hover_pos() {
                let (eye, dir) = camera.ray(rect, pos);
                let forward = normalize(sub(camera.target_mm, eye));
                let t = camera.distance_mm / dot(dir, forward).max(1e-6);
                let under = [0, 1, 2].map(|k| eye[k] + dir[k] * t);
                camera.target_mm = [0, 1, 2].map(|k| under[k] + (camera.target_mm[k] - under[k]) * factor);
            }
            camera.distance_mm = (camera.distance_mm * factor).clamp(1.0, 1e5);
        }
    }
}

pub(super) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(super) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(super) fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

fn normalize(a: [f64; 3]) -> [f64; 3] {
    let l = norm(a).max(1e-30);
    a.map(|x| x / l)
}
