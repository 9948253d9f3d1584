//! The `dependsOn` graph: which modules a module needs, which installed modules need it, and an order that
//! puts every module after its dependencies. Pure; deterministic (ties broken by name).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use super::model::{Catalog, Module};

/// A `dependsOn` cycle, first module repeated at the end: `a -> b -> a`.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("modules depend on each other in a cycle: {}", self.path())]
pub struct DependencyCycle {
    pub modules: Vec<String>,
}

impl DependencyCycle {
    /// `a -> b -> a`.
    pub fn path(&self) -> String {
        self.modules.join(" -> ")
    }
}

/// Module name → the modules it depends on. Edges to modules outside the graph are kept (so callers can
/// report them) but take no part in cycles or ordering.
#[derive(Clone, Debug, Default)]
pub struct DependencyGraph<'a> {
    edges: BTreeMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> DependencyGraph<'a> {
    pub fn new(edges: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>) -> Self {
        let mut graph = DependencyGraph::default();
        for (module, dependencies) in edges {
            graph.edges.entry(module).or_default().extend(dependencies);
        }
        graph
    }

    pub fn of_catalog(catalog: &'a Catalog) -> Self {
        Self::new(catalog.modules.values().map(|m| {
            let dependencies = m.depends_on.iter().map(|d| d.module.as_str()).collect();
            (m.name.as_str(), dependencies)
        }))
    }

    fn neighbours(&self, module: &str) -> impl Iterator<Item = &'a str> + '_ {
        self.edges
            .get(module)
            .into_iter()
            .flatten()
            .copied()
            .filter(|d| self.edges.contains_key(d))
    }

    /// Every cycle, once each: one per strongly connected group of modules, written from its smallest name
    /// along the shortest way back to it. Sorted.
    pub fn cycles(&self) -> Vec<DependencyCycle> {
        let mut cycles: Vec<DependencyCycle> = self
            .strongly_connected()
            .into_iter()
            .filter_map(|group| {
                let start = *group.iter().next()?;
                let is_cycle = group.len() > 1 || self.neighbours(start).any(|d| d == start);
                is_cycle.then(|| self.shortest_cycle(start, &group))
            })
            .collect();
        cycles.sort_by(|a, b| a.modules.cmp(&b.modules));
        cycles
    }

    /// Breadth-first from `start` back to itself inside its group, so the named cycle is a real path.
    fn shortest_cycle(&self, start: &'a str, group: &BTreeSet<&'a str>) -> DependencyCycle {
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(module) = queue.pop_front() {
            for next in self.neighbours(module).filter(|n| group.contains(n)) {
                if next == start {
                    // Walk back from the last module to `start`, then read it forwards.
                    let mut back = vec![start.to_string()];
                    let mut at = module;
                    while at != start {
                        back.push(at.to_string());
                        at = came_from[at];
                    }
                    back.push(start.to_string());
                    back.reverse();
                    return DependencyCycle { modules: back };
                }
                if !came_from.contains_key(next) {
                    came_from.insert(next, module);
                    queue.push_back(next);
                }
            }
        }
        // Unreachable for a strongly connected group; name the group rather than panic.
        let mut modules: Vec<String> = group.iter().map(|m| m.to_string()).collect();
        modules.push(start.to_string());
        DependencyCycle { modules }
    }

    /// Tarjan's algorithm; the catalog holds tens of modules, so recursion depth is no concern.
    fn strongly_connected(&self) -> Vec<BTreeSet<&'a str>> {
        struct State<'a> {
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            groups: Vec<BTreeSet<&'a str>>,
        }
        fn visit<'a>(graph: &DependencyGraph<'a>, v: &'a str, s: &mut State<'a>) {
            let i = s.index.len();
            s.index.insert(v, i);
            s.low.insert(v, i);
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in graph.neighbours(v) {
                if !s.index.contains_key(w) {
                    visit(graph, w, s);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
            if s.low[v] == s.index[v] {
                let mut group = BTreeSet::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    group.insert(w);
                    if w == v {
                        break;
                    }
                }
                s.groups.push(group);
            }
        }
        let mut state = State {
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            groups: Vec::new(),
        };
        for &module in self.edges.keys() {
            if !state.index.contains_key(module) {
                visit(self, module, &mut state);
            }
        }
        state.groups
    }

    /// Every module after the modules it depends on; among modules free to go next, by name.
    pub fn topological_order(&self) -> Result<Vec<&'a str>, DependencyCycle> {
        let mut waiting_on: BTreeMap<&str, usize> = BTreeMap::new();
        let mut needed_by: BTreeMap<&str, Vec<&'a str>> = BTreeMap::new();
        for &module in self.edges.keys() {
            let dependencies: BTreeSet<&str> = self.neighbours(module).collect();
            waiting_on.insert(module, dependencies.len());
            for dependency in dependencies {
                needed_by.entry(dependency).or_default().push(module);
            }
        }
        let mut ready: BTreeSet<&'a str> = self
            .edges
            .keys()
            .copied()
            .filter(|m| waiting_on[m] == 0)
            .collect();
        let mut order = Vec::with_capacity(self.edges.len());
        while let Some(module) = ready.pop_first() {
            order.push(module);
            for &dependent in needed_by.get(module).into_iter().flatten() {
                if let Some(n) = waiting_on.get_mut(dependent) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(dependent);
                    }
                }
            }
        }
        if order.len() < self.edges.len() {
            let cycle = self.cycles().into_iter().next().unwrap_or_default();
            return Err(cycle);
        }
        Ok(order)
    }
}

/// A `dependsOn` entry that the installed modules of a tenant do not satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnmetDependency {
    pub module: String,
    pub requirement: Option<semver::VersionReq>,
    /// The installed version, None when the module is not installed.
    pub installed: Option<semver::Version>,
}

impl fmt::Display for UnmetDependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.module)?;
        if let Some(req) = &self.requirement {
            write!(f, " {req}")?;
        }
        match &self.installed {
            Some(v) => write!(f, " (installed: {v})"),
            None => f.write_str(" (not installed)"),
        }
    }
}

impl Catalog {
    /// The modules `module` depends on directly, by name; empty for an unknown module.
    pub fn dependencies_of(&self, module: &str) -> Vec<&Module> {
        let Some(module) = self.module(module) else {
            return Vec::new();
        };
        let mut dependencies: Vec<&Module> = module
            .depends_on
            .iter()
            .filter_map(|d| self.module(&d.module))
            .collect();
        dependencies.sort_by(|a, b| a.name.cmp(&b.name));
        dependencies
    }

    /// Those of the `installed` modules that depend directly on `module`: while one remains, `module` must
    /// not be rolled back. Sorted, each once.
    pub fn dependents<'i>(
        &self,
        module: &str,
        installed: impl IntoIterator<Item = &'i str>,
    ) -> Vec<&str> {
        let dependents: BTreeSet<&str> = installed
            .into_iter()
            .filter_map(|name| self.module(name))
            .filter(|m| m.name != module && m.depends_on.iter().any(|d| d.module == module))
            .map(|m| m.name.as_str())
            .collect();
        dependents.into_iter().collect()
    }

    /// Every module after its dependencies (ties by name): the order to install, reversed to remove.
    pub fn topological_order(&self) -> Result<Vec<&str>, DependencyCycle> {
        DependencyGraph::of_catalog(self).topological_order()
    }

    /// The `dependsOn` entries of `module` that `installed` (module name → installed release) does not
    /// satisfy, in manifest order; empty for an unknown module.
    pub fn unmet_dependencies(
        &self,
        module: &str,
        installed: &BTreeMap<String, semver::Version>,
    ) -> Vec<UnmetDependency> {
        let Some(module) = self.module(module) else {
            return Vec::new();
        };
        module
            .depends_on
            .iter()
            .filter_map(|d| {
                let version = installed.get(&d.module);
                let met =
                    version.is_some_and(|v| d.requirement.as_ref().is_none_or(|r| r.matches(v)));
                (!met).then(|| UnmetDependency {
                    module: d.module.clone(),
                    requirement: d.requirement.clone(),
                    installed: version.cloned(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
