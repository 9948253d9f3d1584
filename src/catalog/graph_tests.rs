use super::*;
use crate::catalog::model::Dependency;

fn graph<'a>(edges: &[(&'a str, &[&'a str])]) -> DependencyGraph<'a> {
    DependencyGraph::new(edges.iter().map(|(m, d)| (*m, d.to_vec())))
}

fn paths(cycles: &[DependencyCycle]) -> Vec<String> {
    cycles.iter().map(DependencyCycle::path).collect()
}

type Edges<'a> = &'a [(&'a str, &'a [&'a str])];

#[test]
fn finds_each_cycle_once_from_its_smallest_module() {
    let cases: &[(Edges, &[&str])] = &[
        (&[("a", &[]), ("b", &["a"])], &[]),
        (&[("a", &["a"])], &["a -> a"]),
        (&[("a", &["b"]), ("b", &["a"])], &["a -> b -> a"]),
        (
            &[("c", &["a"]), ("a", &["b"]), ("b", &["c"])],
            &["a -> b -> c -> a"],
        ),
        // Two separate cycles, and a module that merely depends on one of them.
        (
            &[
                ("x", &["y"]),
                ("y", &["x"]),
                ("p", &["q"]),
                ("q", &["p"]),
                ("z", &["x"]),
            ],
            &["p -> q -> p", "x -> y -> x"],
        ),
        // One group with a shortcut: the shortest way back is named.
        (
            &[("a", &["b", "c"]), ("b", &["c"]), ("c", &["a"])],
            &["a -> c -> a"],
        ),
        // Edges to modules outside the graph are not cycles.
        (&[("a", &["missing"]), ("missing_too", &[])], &[]),
    ];
    for (edges, want) in cases {
        assert_eq!(paths(&graph(edges).cycles()), *want, "{edges:?}");
    }
}

#[test]
fn orders_dependencies_first_and_ties_by_name() {
    let g = graph(&[
        ("expenses", &["tasks"]),
        ("tasks", &[]),
        ("digital_card", &[]),
        ("reports", &["expenses", "tasks", "unknown"]),
    ]);
    assert_eq!(
        g.topological_order(),
        Ok(vec!["digital_card", "tasks", "expenses", "reports"])
    );
}

#[test]
fn ordering_a_cycle_names_it() {
    let g = graph(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]);
    let err = g.topological_order().expect_err("cycle");
    assert_eq!(err.path(), "a -> b -> a");
    assert_eq!(
        err.to_string(),
        "modules depend on each other in a cycle: a -> b -> a"
    );
}

fn module(name: &str, depends_on: &[(&str, Option<&str>)]) -> Module {
    Module {
        name: name.into(),
        display_name: None,
        description: None,
        releases: Vec::new(),
        depends_on: depends_on
            .iter()
            .map(|(m, req)| Dependency {
                module: m.to_string(),
                requirement: req.map(|r| semver::VersionReq::parse(r).expect("test requirement")),
            })
            .collect(),
        permissions: Vec::new(),
        roles: BTreeMap::new(),
        landlord: Default::default(),
        tenant: Default::default(),
    }
}

fn catalog(modules: Vec<Module>) -> Catalog {
    Catalog {
        modules: modules.into_iter().map(|m| (m.name.clone(), m)).collect(),
        ..Default::default()
    }
}

fn sample() -> Catalog {
    catalog(vec![
        module("tasks", &[]),
        module("expenses", &[("tasks", Some(">=1.0.0"))]),
        module("reports", &[("tasks", None), ("expenses", Some("^1.1"))]),
        module("digital_card", &[]),
    ])
}

#[test]
fn direct_dependencies() {
    let c = sample();
    let names = |m: &str| -> Vec<String> {
        c.dependencies_of(m)
            .iter()
            .map(|m| m.name.clone())
            .collect()
    };
    assert_eq!(names("reports"), ["expenses", "tasks"]);
    assert_eq!(names("expenses"), ["tasks"]);
    assert!(names("tasks").is_empty());
    assert!(names("nope").is_empty());
}

#[test]
fn dependents_are_only_installed_direct_ones() {
    let c = sample();
    assert_eq!(
        c.dependents("tasks", ["expenses", "reports", "digital_card"]),
        ["expenses", "reports"]
    );
    assert_eq!(c.dependents("tasks", ["digital_card"]), Vec::<&str>::new());
    // Each dependent once, however often it is listed.
    assert_eq!(c.dependents("tasks", ["reports", "reports"]), ["reports"]);
    assert_eq!(
        c.dependents("expenses", ["tasks", "reports", "unknown"]),
        ["reports"]
    );
}

#[test]
fn catalog_order() {
    assert_eq!(
        sample().topological_order(),
        Ok(vec!["digital_card", "tasks", "expenses", "reports"])
    );
}

#[test]
fn unmet_dependencies_name_what_is_missing() {
    let c = sample();
    let v = |s: &str| semver::Version::parse(s).expect("test version");
    let installed: BTreeMap<String, semver::Version> = [
        ("tasks".to_string(), v("1.0.0")),
        ("expenses".to_string(), v("1.0.0")),
    ]
    .into();
    assert!(c.unmet_dependencies("expenses", &installed).is_empty());
    let unmet = c.unmet_dependencies("reports", &installed);
    assert_eq!(unmet.len(), 1);
    assert_eq!(unmet[0].to_string(), "expenses ^1.1 (installed: 1.0.0)");

    let only_old_tasks: BTreeMap<String, semver::Version> =
        [("tasks".to_string(), v("0.9.0"))].into();
    let unmet: Vec<String> = c
        .unmet_dependencies("reports", &only_old_tasks)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(unmet, ["expenses ^1.1 (not installed)"]);
    let unmet: Vec<String> = c
        .unmet_dependencies("expenses", &only_old_tasks)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(unmet, ["tasks >=1.0.0 (installed: 0.9.0)"]);
}
