//! The edit engine's cost: setting one entry's tag in kustomizations of 10, 100 and 1,000 entries.
//! Target: under 2 ms at 1,000 entries, growing linearly with the file (BENCHMARKS.md). The baseline
//! group runs the same edits through saphyr-parser alone, in the same run.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gitops_deploy::edit::{
    images_of, set_images, set_images_saphyr_only, EditError, Edited, ImageSetting,
};

/// A realistic kustomization with `n` image entries: comments, quoted and plain values, newNames.
fn kustomization(n: usize) -> String {
    let mut text = String::from(
        "# generated for the benchmark\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: \
         Kustomization\nresources:\n  - ../base # shared base\nimages:\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "  # service {i}\n  - name: registry.example.com/team/service-{i}\n    newName: \
             mirror.example.com/team/service-{i}\n    newTag: \"1.{i}.0\" # {{\"$imagepolicy\": \"ns:s{i}\"}}\n"
        ));
    }
    text
}

/// The edit as it is, and the baseline beside it: the same edit with saphyr-parser alone (the engine
/// before its fast path for plain block YAML).
fn edit_one_entry(c: &mut Criterion) {
    edit_with(c, "set_images_one_entry", set_images);
    edit_with(c, "baseline_saphyr_only", set_images_saphyr_only);
}

type SetImages = fn(&str, &[ImageSetting]) -> Result<Edited, EditError>;

fn edit_with(c: &mut Criterion, name: &str, set_images: SetImages) {
    let mut group = c.benchmark_group(name);
    for n in [10usize, 100, 1000] {
        let text = kustomization(n);
        let setting = ImageSetting::deploy(
            &format!("registry.example.com/team/service-{}", n / 2),
            Some("2.0.1"),
            None,
            None,
        )
        .expect("valid setting");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                let edited = set_images(black_box(text), std::slice::from_ref(&setting))
                    .expect("edit succeeds");
                assert!(edited.is_changed());
                edited
            })
        });
    }
    group.finish();
}

/// Reading the same files (one parse, no edit): the part of an edit that is parsing.
fn read_images(c: &mut Criterion) {
    let mut group = c.benchmark_group("images_of");
    for n in [10usize, 100, 1000] {
        let text = kustomization(n);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| images_of(black_box(text)).expect("reads"))
        });
    }
    group.finish();
}

criterion_group!(benches, edit_one_entry, read_images);
criterion_main!(benches);
