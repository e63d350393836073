//! Image grids caption examples with their class names where the data has names (CIFAR-10,
//! Fashion-MNIST, notMNIST), also when the data comes from the cache.

mod common;

fn grid_svg(pipeline: &str, out: &std::path::Path, title: &str) -> String {
    std::fs::create_dir_all(out).unwrap();
    let file = out.join("names.flow");
    std::fs::write(&file, pipeline.replace("TITLE", title)).unwrap();
    common::run_file(&file, None, &out.join("run")).unwrap();
    std::fs::read_to_string(out.join("run/grid/grid.svg")).unwrap()
}

#[test]
fn cifar_and_fashion_grids_show_class_names_needs_shared_data() {
    if common::shared_data_or_skip("cifar_and_fashion_grids_show_class_names_needs_shared_data").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let names: Vec<String> = std::fs::read_to_string(common::shared_data().unwrap().join("cifar10/class_names.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let cifar =
        "seed 0\nlet d = cifar10(split: \"test\", limit: 12)\nlet grid = image_grid(d, count: 12, title: \"TITLE\")\n";
    let svg = grid_svg(cifar, tmp.path(), "first");
    let shown: Vec<&String> = names.iter().filter(|n| svg.contains(&format!(">\n{n}\n<"))).collect();
    assert!(shown.len() >= 4, "CIFAR-10 names in the grid: {shown:?}");
    // The data stage comes from the cache the second time: its names with it.
    let again = grid_svg(cifar, tmp.path(), "second");
    assert!(again.contains(">\nsecond\n<"), "the grid was drawn again");
    assert!(shown.iter().all(|n| again.contains(&format!(">\n{n}\n<"))), "names lost through the cache");

    let fashion = "seed 0\nlet d = fashion_mnist(split: \"test\", limit: 12)\nlet grid = image_grid(d, count: 12, title: \"TITLE\")\n";
    let svg = grid_svg(fashion, &tmp.path().join("f"), "fashion");
    assert!(
        ["Trouser", "Pullover", "Ankle boot", "Shirt"].iter().any(|n| svg.contains(&format!(">\n{n}\n<"))),
        "Fashion-MNIST names"
    );
}
