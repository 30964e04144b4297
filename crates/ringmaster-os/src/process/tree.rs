//! An index of one snapshot: each process by pid, children by parent, processes
//! by group and by tag. Built once per scan (one pass over the table); then a
//! service's members cost what it holds. Looking up 500 services in a table of
//! 1 000 processes had been 500 passes, each building its own children map.
use std::collections::{BTreeMap, HashMap, HashSet};

use super::ProcessInfo;
use crate::tag::Tag;

/// The index of one snapshot ([`Tree::new`]).
pub struct Tree<'a> {
    by_pid: HashMap<u32, &'a ProcessInfo>,
    children: HashMap<u32, Vec<&'a ProcessInfo>>,
    groups: HashMap<u32, Vec<&'a ProcessInfo>>,
    tagged: HashMap<&'a Tag, Vec<&'a ProcessInfo>>,
}

impl<'a> Tree<'a> {
    /// Indexes `table`, in one pass (two for the parents' start times).
    ///
    /// A process is a child of the one its parent pid names only when it started
    /// no earlier than that one. Windows keeps a process's parent pid after the
    /// parent is gone, and the pid may be reused meanwhile: an old process would
    /// otherwise count as a child of whichever new process got that pid (seen under
    /// Wine: `services.exe` under a `cmd.exe` that reused its parent's pid).
    pub fn new(table: &'a [ProcessInfo]) -> Tree<'a> {
        let by_pid: HashMap<u32, &ProcessInfo> = table.iter().map(|p| (p.pid, p)).collect();
        let mut tree = Tree {
            by_pid,
            children: HashMap::new(),
            groups: HashMap::new(),
            tagged: HashMap::new(),
        };
        for p in table {
            if let Some(ppid) = p.ppid {
                let after_parent = tree
                    .by_pid
                    .get(&ppid)
                    .is_none_or(|parent| p.start_time >= parent.start_time);
                if ppid != p.pid && after_parent {
                    tree.children.entry(ppid).or_default().push(p);
                }
            }
            if let Some(pgid) = p.pgid {
                tree.groups.entry(pgid).or_default().push(p);
            }
            if let Some(tag) = &p.tag {
                tree.tagged.entry(tag).or_default().push(p);
            }
        }
        tree
    }

    /// The process `pid`, if the table holds it.
    pub fn get(&self, pid: u32) -> Option<&'a ProcessInfo> {
        self.by_pid.get(&pid).copied()
    }

    /// The processes of group `pgid` (zombies included).
    pub fn group(&self, pgid: u32) -> &[&'a ProcessInfo] {
        self.groups.get(&pgid).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The descendants of `pid`, not including `pid` (zombies included).
    pub fn descendants(&self, pid: u32) -> Vec<&'a ProcessInfo> {
        let mut out = Vec::new();
        let mut seen = HashSet::from([pid]);
        let mut queue = vec![pid];
        while let Some(parent) = queue.pop() {
            for &child in self.children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
                if seen.insert(child.pid) {
                    out.push(child);
                    queue.push(child.pid);
                }
            }
        }
        out
    }

    /// The members of a service: `root` and its descendants, every process in
    /// group `pgid`, every process carrying `tag`. Zombies left out; sorted by
    /// pid, no duplicates.
    pub fn members(
        &self,
        root: Option<u32>,
        pgid: Option<u32>,
        tag: Option<&Tag>,
    ) -> Vec<&'a ProcessInfo> {
        let mut found: BTreeMap<u32, &'a ProcessInfo> = BTreeMap::new();
        if let Some(root) = root {
            if let Some(p) = self.get(root) {
                found.insert(p.pid, p);
            }
            found.extend(self.descendants(root).into_iter().map(|p| (p.pid, p)));
        }
        let group = pgid.and_then(|g| self.groups.get(&g));
        let tagged = tag.and_then(|t| self.tagged.get(t));
        for p in group.into_iter().chain(tagged).flatten() {
            found.insert(p.pid, p);
        }
        found.into_values().filter(|p| !p.zombie).collect()
    }

    /// [`Tree::members`], and each of `also` (pid and start time: a member known
    /// by identity, whose environment may no longer show the tag) that still has
    /// its start time, with its descendants. Zombies left out; by pid.
    pub fn members_with(
        &self,
        root: Option<u32>,
        pgid: Option<u32>,
        tag: Option<&Tag>,
        also: &[(u32, u64)],
    ) -> BTreeMap<u32, &'a ProcessInfo> {
        let mut found: BTreeMap<u32, &'a ProcessInfo> = self
            .members(root, pgid, tag)
            .into_iter()
            .map(|p| (p.pid, p))
            .collect();
        for &(pid, start) in also {
            // A zombie has no children left: they went to the reaper when it exited.
            if let Some(p) = self.get(pid).filter(|p| p.start_time == start && !p.zombie) {
                found.insert(p.pid, p);
                for d in self.descendants(pid) {
                    if !d.zombie {
                        found.insert(d.pid, d);
                    }
                }
            }
        }
        found
    }
}
