//! The graph and its orders: which services a request needs, what depends on
//! what, whether a service's dependencies are at their condition, and the start
//! order itself.
use super::*;

/// Services in a start order: dependencies first, ties by name. `Err` names a
/// cycle. Dependencies on unknown names are ignored here (checked elsewhere).
pub(crate) fn topo_order(
    graph: &BTreeMap<String, Vec<String>>,
) -> std::result::Result<Vec<String>, Vec<String>> {
    let mut order = Vec::with_capacity(graph.len());
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while order.len() < graph.len() {
        let next = graph.iter().find(|(name, deps)| {
            !done.contains(name.as_str())
                && deps
                    .iter()
                    .all(|d| done.contains(d.as_str()) || !graph.contains_key(d))
        });
        match next {
            Some((name, _)) => {
                done.insert(name);
                order.push(name.clone());
            }
            None => return Err(find_cycle(graph, &done)),
        }
    }
    Ok(order)
}

/// A graph of services as a change or a start checks it: each name with its
/// dependencies and its port.
pub(crate) type Shape = BTreeMap<String, (Vec<String>, Option<u16>)>;

/// What is wrong with `graph`: a dependency that is no service (``which this
/// change removes`` when it is in `gone`), a port used twice, a cycle. Empty
/// when it can run.
pub(crate) fn graph_problems(graph: &Shape, gone: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ports: BTreeMap<u16, &str> = BTreeMap::new();
    for (name, (deps, port)) in graph {
        for d in deps.iter().filter(|d| !graph.contains_key(*d)) {
            problems.push(if gone.contains(d) {
                format!("service `{name}` depends on `{d}`, which this change removes")
            } else {
                format!("service `{name}` depends on unknown service `{d}`")
            });
        }
        if let Some(p) = port {
            if let Some(other) = ports.insert(*p, name) {
                problems.push(format!("services `{other}` and `{name}` both use port {p}"));
            }
        }
    }
    if let Err(cycle) = topo_order(&deps_of(graph)) {
        problems.push(format!("dependency cycle: {}", cycle.join(" → ")));
    }
    problems
}

/// The dependencies of each service of `graph`.
pub(crate) fn deps_of(graph: &Shape) -> BTreeMap<String, Vec<String>> {
    graph
        .iter()
        .map(|(n, (d, _))| (n.clone(), d.clone()))
        .collect()
}

/// Every service of `graph` that depends on `name`, directly or not.
pub(super) fn dependents_in(graph: &BTreeMap<String, Vec<String>>, name: &str) -> Vec<String> {
    let mut found: BTreeSet<&str> = BTreeSet::new();
    let mut todo = vec![name];
    while let Some(n) = todo.pop() {
        for (other, deps) in graph {
            if deps.iter().any(|d| d == n) && found.insert(other.as_str()) {
                todo.push(other);
            }
        }
    }
    found.remove(name);
    found.into_iter().map(str::to_owned).collect()
}

/// True when `dep` is at `condition`: `started` is latched (spawned in this run,
/// even when it has exited since).
pub(super) fn at_condition(dep: &Entry, condition: Condition) -> bool {
    match condition {
        Condition::Ready => dep.ready,
        Condition::Started => dep.started || dep.ready,
        Condition::Completed => dep.completed,
    }
}

fn find_cycle(graph: &BTreeMap<String, Vec<String>>, done: &BTreeSet<&str>) -> Vec<String> {
    // Walk from any unfinished node along unfinished dependencies until a repeat.
    let Some(start) = graph.keys().find(|k| !done.contains(k.as_str())) else {
        return Vec::new();
    };
    let mut path: Vec<String> = vec![start.clone()];
    loop {
        let last = path.last().cloned().unwrap_or_default();
        let next = graph
            .get(&last)
            .and_then(|deps| {
                deps.iter()
                    .find(|d| graph.contains_key(*d) && !done.contains(d.as_str()))
            })
            .cloned();
        let Some(next) = next else {
            return path;
        };
        if let Some(i) = path.iter().position(|p| *p == next) {
            let mut cycle = path[i..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next);
    }
}

impl Supervisor {
    /// The needed set of `only` (or all): the named services and, transitively,
    /// what they depend on.
    /// A service that a change is removing is no longer part of it.
    pub(super) fn closure(&self, only: Option<&[String]>) -> Result<Vec<String>> {
        let staying = |n: &String| self.entries.get(n).is_some_and(|e| !e.leaving);
        let Some(only) = only else {
            return Ok(self.order.iter().filter(|n| staying(n)).cloned().collect());
        };
        let mut set = BTreeSet::new();
        let mut stack: Vec<String> = Vec::new();
        for n in only {
            if !staying(n) {
                return Err(Error::UnknownService(n.clone()));
            }
            stack.push(n.clone());
        }
        while let Some(n) = stack.pop() {
            if !staying(&n) {
                continue;
            }
            if set.insert(n.clone()) {
                if let Some(e) = self.entries.get(&n) {
                    stack.extend(e.spec.deps.iter().map(|d| d.service.clone()));
                }
                // A replicated service comes with its members.
                stack.extend(self.members(&n));
            }
        }
        Ok(self
            .order
            .iter()
            .filter(|n| set.contains(*n))
            .cloned()
            .collect())
    }

    /// Every service that depends on `name`, directly or not, in start order.
    pub(super) fn dependents(&self, name: &str) -> Vec<String> {
        let mut set: BTreeSet<String> = BTreeSet::new();
        set.insert(name.to_owned());
        for n in &self.order {
            let e = &self.entries[n];
            if e.spec.deps.iter().any(|d| set.contains(&d.service)) {
                set.insert(n.clone());
            }
        }
        set.remove(name);
        self.order
            .iter()
            .filter(|n| set.contains(*n))
            .cloned()
            .collect()
    }

    /// The first dependency of `e` not at its condition, with the condition.
    pub(super) fn unmet(&self, e: &Entry) -> Option<(String, Condition)> {
        e.spec.deps.iter().find_map(|d| {
            let dep = self.entries.get(&d.service)?;
            (!at_condition(dep, d.condition)).then(|| (d.service.clone(), d.condition))
        })
    }

    pub(super) fn failed_dependency(&self, e: &Entry) -> Option<String> {
        e.spec
            .deps
            .iter()
            .find(|d| {
                self.entries
                    .get(&d.service)
                    .is_some_and(|dep| dep.state == ServiceState::Failed)
            })
            .map(|d| d.service.clone())
    }

    /// The first dependency of `e` that can never reach its condition in this
    /// run although it did not fail: one that must be `ready` but exited with
    /// status 0 and is not restarted (policy `never` or `on-failure`), with the
    /// reason to give.
    pub(super) fn ended_dependency(&self, e: &Entry) -> Option<(String, String)> {
        e.spec.deps.iter().find_map(|d| {
            let dep = self.entries.get(&d.service)?;
            let ended = d.condition == Condition::Ready
                && !dep.ready
                && dep.completed
                && dep.phase == Phase::Idle
                && dep.restart_timer.is_none();
            ended.then(|| {
                (
                    d.service.clone(),
                    format!(
                        "dependency `{}` exited with code 0 and is not restarted, so it can \
                         never be ready (a one-shot job wants the condition \"completed\")",
                        d.service
                    ),
                )
            })
        })
    }

    /// Marks `names` needed; those not running or on their way (and not already
    /// waiting) begin a new run. Returns the ones this starts.
    pub(super) fn need(&mut self, names: &[String]) -> Vec<String> {
        let mut started_here = Vec::new();
        for n in names {
            let Some(e) = self.entries.get_mut(n).filter(|e| !e.leaving) else {
                continue;
            };
            e.needed = true;
            if !e.in_flight() && e.state != ServiceState::Waiting {
                // A new run.
                e.attempts = 0;
                e.completed = false;
                e.started = false;
                e.set_state(ServiceState::Waiting, None);
            }
            if !e.in_flight() {
                started_here.push(n.clone());
            }
        }
        started_here
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff_delay(b, 1), Duration::from_millis(100));
        assert_eq!(backoff_delay(b, 2), Duration::from_millis(200));
        assert_eq!(backoff_delay(b, 3), Duration::from_millis(400));
        assert_eq!(backoff_delay(b, 40), MAX_BACKOFF);
    }

    #[test]
    fn topo_order_puts_dependencies_first_and_names_cycles() {
        let g: BTreeMap<String, Vec<String>> = [
            ("web", vec!["api"]),
            ("api", vec!["db"]),
            ("db", vec![]),
            ("cache", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_iter().map(String::from).collect()))
        .collect();
        assert_eq!(
            topo_order(&g).expect("no cycle"),
            vec!["cache", "db", "api", "web"]
        );
        let c: BTreeMap<String, Vec<String>> = [("a", vec!["b"]), ("b", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(String::from).collect()))
            .collect();
        assert_eq!(topo_order(&c).expect_err("a cycle"), vec!["a", "b", "a"]);
    }
}
