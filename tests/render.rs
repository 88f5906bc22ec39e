//! Software renders: pixel facts on synthetic scenes (colour, occlusion, view conventions, transparency, focus), PNG
//! round trip, determinism across thread counts, contact sheets.

mod shapes;

use guidesmith::mesh::{BoundingBox, Mesh};
use guidesmith::render::{grown, render, render_views, write_png, RgbImage, Scene, View};

const RED: [u8; 3] = [200, 40, 40];
const BLUE: [u8; 3] = [40, 60, 200];
const WHITE: [u8; 3] = [235, 235, 235];

fn reddish(p: [u8; 3]) -> bool {
    i32::from(p[0]) > i32::from(p[2]) + 50 && i32::from(p[0]) > i32::from(p[1]) + 50
}

fn bluish(p: [u8; 3]) -> bool {
    i32::from(p[2]) > i32::from(p[0]) + 50 && i32::from(p[2]) > i32::from(p[1]) + 40
}

fn sphere() -> Mesh {
    shapes::icosphere([10.0, -20.0, 30.0], 20.0, 4)
}

#[test]
fn centre_pixel_is_the_shaded_object_and_corners_are_background() {
    let ball = sphere();
    let mut scene = Scene::new();
    scene.add(&ball, RED, 1.0);
    let img = render(&scene, View::Anterior, 200, 150, None);
    assert_eq!((img.width(), img.height()), (200, 150));
    let centre = img.pixel(100, 75);
    assert!(reddish(centre), "centre {centre:?} is the red sphere");
    // Facing the headlight and the key light, the centre is lit but not brighter than the light allows.
    assert!(centre[0] > 120, "lit: {centre:?}");
    let empty = render(&Scene::new(), View::Anterior, 200, 150, None);
    for (x, y) in [(0, 0), (199, 0), (0, 149), (199, 149)] {
        assert_eq!(img.pixel(x, y), empty.pixel(x, y), "corner ({x}, {y}) is background");
    }
    // The background is a vertical gradient: light at the top, darker at the bottom.
    let (top, bottom) = (empty.pixel(0, 0), empty.pixel(0, 149));
    assert!(
        top.iter().zip(&bottom).all(|(t, b)| t >= b) && top != bottom,
        "{top:?} over {bottom:?}"
    );
    // The sphere fills the fitted view: its edge is close to the frame on the limiting axis (height).
    let column: Vec<bool> = (0..150).map(|y| reddish(img.pixel(100, y))).collect();
    let first = column.iter().position(|&r| r).expect("sphere in the middle column");
    assert!(first < 15, "sphere starts at row {first}");
}

#[test]
fn a_box_in_front_occludes_the_one_behind() {
    // Red box anterior (smaller y), blue box posterior; they overlap across the view.
    let front = shapes::box_mesh([-10.0, -30.0, -10.0], [10.0, -20.0, 10.0]);
    let back = shapes::box_mesh([-15.0, 20.0, -15.0], [15.0, 30.0, 15.0]);
    let mut scene = Scene::new();
    scene.add(&back, BLUE, 1.0).add(&front, RED, 1.0);
    let anterior = render(&scene, View::Anterior, 160, 160, None);
    assert!(reddish(anterior.pixel(80, 80)), "{:?}", anterior.pixel(80, 80));
    // Outside the small front box the back box shows.
    assert!(bluish(anterior.pixel(80, 80 - 60)), "{:?}", anterior.pixel(80, 20));
    let posterior = render(&scene, View::Posterior, 160, 160, None);
    assert!(bluish(posterior.pixel(80, 80)), "{:?}", posterior.pixel(80, 80));
}

#[test]
fn anterior_view_shows_the_patient_right_on_the_image_left() {
    let right_side = shapes::icosphere([-40.0, 0.0, 0.0], 10.0, 3); // -x: patient's right
    let left_side = shapes::icosphere([40.0, 0.0, 0.0], 10.0, 3);
    let mut scene = Scene::new();
    scene.add(&right_side, RED, 1.0).add(&left_side, BLUE, 1.0);
    let img = render(&scene, View::Anterior, 300, 100, None);
    let row: Vec<[u8; 3]> = (0..300).map(|x| img.pixel(x, 50)).collect();
    let red_x = row.iter().position(|&p| reddish(p)).expect("red sphere visible");
    let blue_x = row.iter().position(|&p| bluish(p)).expect("blue sphere visible");
    assert!(red_x < 150 && blue_x > 150, "red at {red_x}, blue at {blue_x}");

    let img = render(&scene, View::Posterior, 300, 100, None);
    assert!(
        bluish(img.pixel(40, 50)) || bluish(img.pixel(60, 50)),
        "posterior mirrors"
    );
    // Superior is up in the frontal views: a sphere above shows in the upper half.
    let high = shapes::icosphere([0.0, 0.0, 40.0], 10.0, 3);
    let low = shapes::icosphere([0.0, 0.0, -40.0], 10.0, 3);
    let mut scene = Scene::new();
    scene.add(&high, RED, 1.0).add(&low, BLUE, 1.0);
    for view in [View::Anterior, View::Left, View::Right] {
        let img = render(&scene, view, 100, 300, None);
        // 100 mm of scene in 92 % of 300 pixels: the sphere centres are 110 pixels from the middle.
        assert!(reddish(img.pixel(50, 40)) && bluish(img.pixel(50, 260)), "{view:?}");
    }
}

#[test]
fn a_semi_transparent_item_shows_what_is_behind_it() {
    let cover = shapes::box_mesh([-30.0, -40.0, -30.0], [30.0, -30.0, 30.0]);
    let hidden = shapes::box_mesh([-10.0, 0.0, -10.0], [10.0, 10.0, 10.0]);
    let centre = |opacity: f32| {
        let mut scene = Scene::new();
        scene.add(&cover, WHITE, opacity).add(&hidden, RED, 1.0);
        render(&scene, View::Anterior, 120, 120, None).pixel(60, 60)
    };
    let opaque = centre(1.0);
    let see_through = centre(0.4);
    assert!(
        i32::from(opaque[0]) - i32::from(opaque[2]) < 10,
        "opaque cover hides the red box: {opaque:?}"
    );
    assert!(
        i32::from(see_through[0]) - i32::from(see_through[2]) > 40,
        "red shows through: {see_through:?}"
    );
    // Opacity 0 hides the item entirely: the red box is seen directly.
    assert!(reddish(centre(0.0)), "{:?}", centre(0.0));
}

#[test]
fn the_focus_box_fits_the_camera_to_one_object() {
    let small = shapes::icosphere([-40.0, 0.0, 0.0], 5.0, 3);
    let big = shapes::icosphere([40.0, 0.0, 0.0], 20.0, 3);
    let mut scene = Scene::new();
    scene.add(&small, RED, 1.0).add(&big, BLUE, 1.0);
    let whole = render(&scene, View::Anterior, 200, 200, None);
    assert!(
        !reddish(whole.pixel(100, 100)),
        "the middle of the whole scene is empty"
    );
    let focus = small.bounding_box().map(|b| grown(b, 2.0));
    let zoomed = render(&scene, View::Anterior, 200, 200, focus);
    assert!(reddish(zoomed.pixel(100, 100)), "{:?}", zoomed.pixel(100, 100));
    // The small sphere (10 mm across in a 14 mm box) spans most of the zoomed image.
    let red = (0..200).filter(|&x| reddish(zoomed.pixel(x, 100))).count();
    assert!(red > 120, "{red} red pixels across");
}

#[test]
fn same_scene_gives_the_same_pixels_whatever_the_thread_count() {
    let ball = sphere();
    let slab = shapes::box_mesh([-5.0, -45.0, 10.0], [25.0, -38.0, 50.0]);
    let mut scene = Scene::new();
    scene.add(&ball, [230, 220, 200], 0.6).add(&slab, [0, 140, 160], 1.0);
    let view = View::Iso(30.0, 20.0);
    let a = render(&scene, view, 160, 120, None);
    let b = render(&scene, view, 160, 120, None);
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
        .install(|| render(&scene, view, 160, 120, None));
    let three_threads = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("pool")
        .install(|| render(&scene, view, 160, 120, None));
    assert_eq!(a, b);
    assert_eq!(a, one_thread);
    assert_eq!(a, three_threads);
}

#[test]
fn png_round_trip_keeps_size_and_pixels() {
    let ball = sphere();
    let mut scene = Scene::new();
    scene.add(&ball, RED, 1.0);
    let img = render(&scene, View::Iso(-40.0, 30.0), 97, 61, None);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("view.png");
    write_png(&img, &path).expect("write png");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).expect("open")));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    assert_eq!((info.width, info.height), (97, 61));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let decoded = RgbImage::from_raw(97, 61, buf[..info.buffer_size()].to_vec()).expect("rgb");
    assert_eq!(decoded, img);
    // Same image, same file bytes.
    let again = dir.path().join("again.png");
    write_png(&img, &again).expect("write png");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        std::fs::read(&again).expect("read")
    );
    // An empty image is refused naming the file.
    let e = write_png(&RgbImage::new(0, 5, [0; 3]), &dir.path().join("empty.png")).expect_err("empty");
    assert!(e.to_string().contains("empty.png"), "{e}");
}

#[test]
fn contact_sheet_has_a_labelled_cell_per_view() {
    let ball = sphere();
    let mut scene = Scene::new();
    scene.add(&ball, RED, 1.0);
    let views = [
        ("anterior", View::Anterior),
        ("left", View::Left),
        ("superior", View::Superior),
    ];
    let sheet = render_views(&scene, &views, (120, 90), None);
    // Three views: two columns, two rows, 2-pixel lines between cells.
    assert_eq!((sheet.width(), sheet.height()), (2 * 120 + 2, 2 * 90 + 2));
    for (col, row) in [(0, 0), (1, 0), (0, 1)] {
        let (x0, y0) = (col * 122, row * 92);
        // The cell's centre is the sphere; its label is dark text in the top-left corner.
        assert!(reddish(sheet.pixel(x0 + 60, y0 + 45)), "cell {col},{row}");
        let dark = (0..30)
            .flat_map(|y| (0..60).map(move |x| (x, y)))
            .filter(|&(x, y)| sheet.pixel(x0 + x, y0 + y).iter().all(|&c| c < 90))
            .count();
        assert!(dark > 20, "label pixels in cell {col},{row}: {dark}");
    }
    // The unused fourth cell stays empty background-free grey of the sheet.
    let unused = sheet.pixel(122 + 60, 92 + 45);
    assert!(!reddish(unused), "{unused:?}");
}

#[test]
fn meshes_with_bad_indices_or_positions_do_not_break_the_render() {
    let mut broken = sphere();
    broken.triangles.push([0, 1, 1_000_000]);
    broken.positions.push([f64::NAN, 0.0, 0.0]);
    let last = broken.positions.len() as u32 - 1;
    broken.triangles.push([0, 1, last]);
    let mut scene = Scene::new();
    scene.add(&broken, RED, 1.0);
    let img = render(&scene, View::Anterior, 80, 60, None);
    assert!(reddish(img.pixel(40, 30)));
    let nan_focus = BoundingBox {
        min_mm: [f64::NAN; 3],
        max_mm: [1.0; 3],
    };
    let img = render(&scene, View::Anterior, 80, 60, Some(nan_focus));
    assert!(reddish(img.pixel(40, 30)), "a non-finite focus falls back to the scene");
    assert_eq!(render(&scene, View::Anterior, 0, 10, None).width(), 0);
}
