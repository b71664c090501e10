//! Edit time per target at 10, 100 and 1,000 keys (BENCHMARKS.md, "Edit time per target"): one image
//! deployed into a kustomization with N entries (the baseline, the engine the other targets are
//! measured against in the same run), a Helm values file with N services (the key set of the middle
//! one), a YAML file with N keys (one key path) and a manifests file with N Deployments (one of
//! them uses the image).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gitops_deploy::edit::{HelmKeys, ImageSetting, KeyPath, Target, ValueTemplate};

fn kustomization(n: usize) -> String {
    let mut text = String::from("resources:\n  - ../base\nimages:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - name: registry.example.com/team/service-{i} # service {i}\n    newTag: \"1.{i}.0\"\n"
        ));
    }
    text
}

fn values(n: usize) -> String {
    let mut text = String::from("# values\n");
    for i in 0..n {
        text.push_str(&format!(
            "service{i}:\n  image:\n    repository: registry.example.com/team/service-{i} # service {i}\n    tag: \"1.{i}.0\"\n    pullPolicy: IfNotPresent\n"
        ));
    }
    text
}

fn yaml(n: usize) -> String {
    let mut text = String::from("settings:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  key{i}: registry.example.com/team/service-{i}:1.{i}.0 # key {i}\n"
        ));
    }
    text
}

fn manifests(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: service-{i}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/team/service-{i}:1.{i}.0\n"
        ));
    }
    text
}

fn per_target(c: &mut Criterion) {
    for (name, make) in [
        ("kustomize", kustomization as fn(usize) -> String),
        ("helm", values),
        ("yaml", yaml),
        ("manifests", manifests),
    ] {
        let mut group = c.benchmark_group(format!("target_{name}"));
        for n in [10usize, 100, 1000] {
            let text = make(n);
            let middle = n / 2;
            let image = format!("registry.example.com/team/service-{middle}");
            let target = match name {
                "kustomize" => Target::Kustomize,
                "helm" => Target::Helm(vec![HelmKeys::parse(&format!(
                    "repository=service{middle}.image.repository,tag=service{middle}.image.tag"
                ))
                .unwrap()]),
                "yaml" => Target::Yaml {
                    paths: vec![KeyPath::parse(&format!("settings.key{middle}")).unwrap()],
                    template: ValueTemplate::whole_reference(),
                },
                _ => Target::Manifests,
            };
            let setting = ImageSetting::deploy(&image, Some("2.0.1"), None, None).unwrap();
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
                b.iter(|| {
                    let edited = target
                        .apply(black_box(text), &setting)
                        .expect("edit succeeds");
                    assert!(edited.is_changed());
                    edited
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, per_target);
criterion_main!(benches);
