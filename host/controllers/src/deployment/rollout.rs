//! Pure rollout planning: how big each ReplicaSet should be next, as Kubernetes' deployment
//! controller decides it (`rolling.go`, `recreate.go`, `sync.go`). The reconciler applies the
//! sizes these functions return.

use std::cmp::Reverse;
use std::collections::HashMap;

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::util::{
    DESIRED_REPLICAS, Limits, MAX_REPLICAS, Strategy, available_replicas, by_creation,
    int_annotation, revision, spec_replicas, status_replicas,
};

/// A planned size for the ReplicaSet at an index of the list given to the planner.
pub(super) type Resize = (usize, i32);

/// The size the new ReplicaSet may grow to now (`NewRSNewReplicas`): under RollingUpdate, as
/// far as `replicas + maxSurge` pods in all ReplicaSets allow; under Recreate, all at once.
/// `all_total` counts the pods of every ReplicaSet, the new one included: Kubernetes sums
/// `spec.replicas`; the caller also counts pods not yet removed (see `pods_or_wanted`).
pub(super) fn new_rs_new_replicas(limits: &Limits, all_total: i32, new_current: i32) -> i32 {
    match limits.strategy {
        Strategy::Recreate => limits.replicas,
        Strategy::RollingUpdate => {
            let max_total = limits.max_total();
            if all_total >= max_total {
                return new_current;
            }
            let up = (max_total - all_total).min(limits.replicas - new_current);
            new_current + up.max(0)
        }
    }
}

/// How far to scale down the old ReplicaSets of a rolling update (`reconcileOldReplicaSets`):
/// first their unavailable pods, then available ones while at least
/// `replicas - maxUnavailable` pods stay available. `old` are the active old ReplicaSets.
pub(super) fn scale_down_old(
    limits: &Limits,
    old: &[&ReplicaSet],
    new: &ReplicaSet,
) -> Vec<Resize> {
    let old_total: i32 = old.iter().map(|rs| spec_replicas(rs)).sum();
    if old_total == 0 {
        return Vec::new();
    }
    let all_total = old_total + spec_replicas(new);
    let new_unavailable = spec_replicas(new) - available_replicas(new);
    let max_scaled_down = all_total - limits.min_available() - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..old.len()).collect();
    order.sort_by(|&a, &b| by_creation(old[a], old[b]));
    let mut sizes: Vec<i32> = old.iter().map(|rs| spec_replicas(rs)).collect();

    // Unhealthy replicas go first: they cost no availability.
    let mut cleaned = 0;
    for &i in &order {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = sizes[i] - available_replicas(old[i]);
        if sizes[i] == 0 || unhealthy <= 0 {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(unhealthy);
        sizes[i] -= down;
        cleaned += down;
    }

    // Then available ones, down to the minimum availability.
    let available: i32 =
        old.iter().map(|rs| available_replicas(rs)).sum::<i32>() + available_replicas(new);
    let allowed = available - limits.min_available();
    let mut scaled = 0;
    for &i in &order {
        if scaled >= allowed {
            break;
        }
        if sizes[i] == 0 {
            continue;
        }
        let down = sizes[i].min(allowed - scaled);
        sizes[i] -= down;
        scaled += down;
    }

    sizes
        .into_iter()
        .enumerate()
        .filter(|&(i, size)| size != spec_replicas(old[i]))
        .collect()
}

/// Whether the new ReplicaSet has all of the Deployment's replicas, available.
pub(super) fn is_saturated(limits: &Limits, new: Option<&ReplicaSet>) -> bool {
    new.is_some_and(|rs| {
        int_annotation(rs, DESIRED_REPLICAS) == Some(limits.replicas)
            && spec_replicas(rs) == limits.replicas
            && available_replicas(rs) == limits.replicas
    })
}

/// The sizes of a scaling event (`scale` in Kubernetes' `sync.go`): a single active
/// ReplicaSet (or else the newest) takes all replicas; a saturated new ReplicaSet leaves the
/// old ones at zero; otherwise a rolling Deployment spreads the change over its active
/// ReplicaSets in proportion to their sizes. `sets` are all the Deployment's ReplicaSets,
/// `new` the index of the new one; `status_replicas` is the Deployment's `status.replicas`.
/// Every ReplicaSet returned is to be scaled (its replica annotations refreshed too).
pub(super) fn scale(
    limits: &Limits,
    sets: &[ReplicaSet],
    new: Option<usize>,
    status_replicas: i32,
) -> Vec<Resize> {
    let active: Vec<usize> = (0..sets.len())
        .filter(|&i| spec_replicas(&sets[i]) > 0)
        .collect();
    let one = match active.as_slice() {
        [] => new.or_else(|| newest(sets)),
        [only] => Some(*only),
        _ => None,
    };
    if let Some(i) = one {
        return if spec_replicas(&sets[i]) == limits.replicas {
            Vec::new()
        } else {
            vec![(i, limits.replicas)]
        };
    }
    if is_saturated(limits, new.map(|i| &sets[i])) {
        return active
            .into_iter()
            .filter(|&i| Some(i) != new)
            .map(|i| (i, 0))
            .collect();
    }
    if limits.strategy != Strategy::RollingUpdate {
        return Vec::new();
    }
    let total: i32 = active.iter().map(|&i| spec_replicas(&sets[i])).sum();
    let allowed = if limits.replicas > 0 {
        limits.max_total()
    } else {
        0
    };
    let to_add = allowed - total;
    let mut order = active;
    // Larger first; on a tie, newer first when scaling up and older first when scaling down.
    order.sort_by(|&a, &b| {
        let size = Reverse(spec_replicas(&sets[a])).cmp(&Reverse(spec_replicas(&sets[b])));
        let age = by_creation(&sets[a], &sets[b]);
        size.then(if to_add > 0 { age.reverse() } else { age })
    });
    let mut sizes: HashMap<usize, i32> = HashMap::new();
    let mut added = 0;
    for &i in &order {
        let current = spec_replicas(&sets[i]);
        if to_add == 0 {
            sizes.insert(i, current);
            continue;
        }
        let proportion = proportion(limits, &sets[i], status_replicas, to_add, added);
        sizes.insert(i, current + proportion);
        added += proportion;
    }
    if let Some(&largest) = order.first()
        && to_add != 0
    {
        let size = sizes.entry(largest).or_default();
        *size = (*size + to_add - added).max(0);
    }
    order
        .into_iter()
        .map(|i| (i, sizes.get(&i).copied().unwrap_or(0)))
        .collect()
}

/// The newest ReplicaSet.
fn newest(sets: &[ReplicaSet]) -> Option<usize> {
    (0..sets.len()).max_by(|&a, &b| by_creation(&sets[a], &sets[b]))
}

/// `GetReplicaSetProportion`: this ReplicaSet's share of `to_add` replicas, `added` already given.
fn proportion(
    limits: &Limits,
    rs: &ReplicaSet,
    status_replicas: i32,
    to_add: i32,
    added: i32,
) -> i32 {
    let current = spec_replicas(rs);
    if current == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if limits.replicas == 0 {
        -current
    } else {
        let annotated = int_annotation(rs, MAX_REPLICAS)
            .filter(|&n| n > 0)
            .unwrap_or(status_replicas);
        if annotated <= 0 {
            0
        } else {
            let size = f64::from(current) * f64::from(limits.max_total()) / f64::from(annotated);
            // Go's math.Round: halves away from zero, as f64::round.
            size.round() as i32 - current
        }
    };
    let left = to_add - added;
    if to_add > 0 {
        fraction.min(left)
    } else {
        fraction.max(left)
    }
}

/// Old ReplicaSets to delete beyond `revisionHistoryLimit` (`cleanupDeployment`): the lowest
/// revisions first, only those with no replicas wanted or running, fully observed and not
/// already being deleted. `old` are indices into `sets`.
pub(super) fn history_to_delete(
    limit: Option<i32>,
    sets: &[ReplicaSet],
    old: &[usize],
) -> Vec<usize> {
    let Some(limit) = limit.filter(|&l| l != i32::MAX) else {
        return Vec::new();
    };
    let mut alive: Vec<usize> = old
        .iter()
        .copied()
        .filter(|&i| sets[i].metadata.deletion_timestamp.is_none())
        .collect();
    let excess = alive.len() as i64 - i64::from(limit.max(0));
    if excess <= 0 {
        return Vec::new();
    }
    alive.sort_by(|&a, &b| {
        revision(&sets[a])
            .unwrap_or(0)
            .cmp(&revision(&sets[b]).unwrap_or(0))
            .then_with(|| by_creation(&sets[a], &sets[b]))
    });
    alive
        .into_iter()
        .take(usize::try_from(excess).unwrap_or(0))
        .filter(|&i| {
            let rs = &sets[i];
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation);
            status_replicas(rs) == 0
                && spec_replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= observed.unwrap_or(0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{ReplicaSetSpec, ReplicaSetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn limits(replicas: i32, max_surge: i32, max_unavailable: i32) -> Limits {
        Limits {
            replicas,
            max_surge,
            max_unavailable,
            strategy: Strategy::RollingUpdate,
        }
    }

    fn rs(name: &str, age: i64, spec: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(
                    jiff::Timestamp::from_second(1_700_000_000 + age).expect("timestamp"),
                )),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(spec),
                ..ReplicaSetSpec::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas: spec,
                ready_replicas: Some(available),
                available_replicas: Some(available),
                ..ReplicaSetStatus::default()
            }),
        }
    }

    fn annotated(mut rs: ReplicaSet, desired: i32, max: i32) -> ReplicaSet {
        rs.metadata.annotations = Some(
            [
                (DESIRED_REPLICAS.to_string(), desired.to_string()),
                (MAX_REPLICAS.to_string(), max.to_string()),
            ]
            .into(),
        );
        rs
    }

    #[test]
    fn new_replica_set_grows_within_surge() {
        let l = limits(10, 3, 2);
        // Fresh rollout: old has 10, new may take the 3 surge pods.
        assert_eq!(new_rs_new_replicas(&l, 10, 0), 3);
        // At the limit: no growth.
        assert_eq!(new_rs_new_replicas(&l, 13, 3), 3);
        // Never beyond replicas.
        assert_eq!(new_rs_new_replicas(&l, 0, 0), 10);
        assert_eq!(new_rs_new_replicas(&l, 9, 9), 10);
        let recreate = Limits {
            strategy: Strategy::Recreate,
            ..limits(4, 0, 0)
        };
        assert_eq!(new_rs_new_replicas(&recreate, 4, 0), 4);
    }

    #[test]
    fn old_replica_sets_shrink_keeping_availability() {
        let l = limits(10, 3, 2);
        let old = rs("old", 0, 10, 10);
        // New RS just scaled to 3, none available: only maxUnavailable old pods may go.
        let new = rs("new", 10, 3, 0);
        assert_eq!(scale_down_old(&l, &[&old], &new), vec![(0, 8)]);
        // Three new pods available: three more old ones may go.
        let old = rs("old", 0, 8, 8);
        let new = rs("new", 10, 5, 3);
        assert_eq!(scale_down_old(&l, &[&old], &new), vec![(0, 5)]);
        // Unavailable old pods go first, as many as the total allows (13 - 8 - 3 = 2),
        // and no available one then, as only 6 are.
        let old = rs("old", 0, 10, 6);
        let new = rs("new", 10, 3, 0);
        assert_eq!(scale_down_old(&l, &[&old], &new), vec![(0, 8)]);
        // Nothing to do when availability is at the minimum.
        let old = rs("old", 0, 8, 8);
        let new = rs("new", 10, 5, 0);
        assert!(scale_down_old(&l, &[&old], &new).is_empty());
        // The oldest ReplicaSet shrinks first.
        let older = rs("a", 0, 2, 2);
        let newer_old = rs("b", 5, 8, 8);
        let new = rs("new", 10, 10, 10);
        assert_eq!(
            scale_down_old(&l, &[&newer_old, &older], &new),
            vec![(0, 0), (1, 0)]
        );
    }

    #[test]
    fn a_single_active_replica_set_takes_the_scale() {
        let l = limits(5, 2, 1);
        let sets = vec![rs("a", 0, 0, 0), rs("b", 1, 3, 3)];
        assert_eq!(scale(&l, &sets, Some(1), 3), vec![(1, 5)]);
        // No active one: the new one (or else the newest) is scaled.
        let sets = vec![rs("a", 0, 0, 0), rs("b", 1, 0, 0)];
        assert_eq!(scale(&l, &sets, Some(0), 0), vec![(0, 5)]);
        assert_eq!(scale(&l, &sets, None, 0), vec![(1, 5)]);
        // Already right: nothing.
        let sets = vec![rs("a", 0, 5, 5)];
        assert!(scale(&l, &sets, Some(0), 5).is_empty());
    }

    #[test]
    fn saturated_new_replica_set_zeroes_the_old_ones() {
        let l = limits(3, 1, 0);
        let sets = vec![rs("old", 0, 2, 2), annotated(rs("new", 1, 3, 3), 3, 4)];
        assert_eq!(scale(&l, &sets, Some(1), 5), vec![(0, 0)]);
    }

    #[test]
    fn mid_rollout_scaling_is_proportional() {
        // 10 replicas, surge 3: old 8 and new 5 (13 = max). Scale to 20 (surge 5 → 25).
        let l = limits(20, 5, 5);
        let sets = vec![
            annotated(rs("old", 0, 8, 8), 10, 13),
            annotated(rs("new", 1, 5, 2), 10, 13),
        ];
        let mut plan = scale(&l, &sets, Some(1), 13);
        plan.sort();
        let total: i32 = plan.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 25);
        // 8 * 25 / 13 = 15.4 → 15; 5 * 25 / 13 = 9.6 → 10.
        assert_eq!(plan, vec![(0, 15), (1, 10)]);
        // And back down to 10: the sum returns to 10 + 3.
        let l = limits(10, 3, 2);
        let sets = vec![
            annotated(rs("old", 0, 15, 15), 20, 25),
            annotated(rs("new", 1, 10, 2), 20, 25),
        ];
        let plan = scale(&l, &sets, Some(1), 25);
        assert_eq!(plan.iter().map(|(_, n)| n).sum::<i32>(), 13);
        assert!(plan.iter().all(|&(_, n)| n >= 0));
        // Scaling to zero empties every ReplicaSet.
        let l = limits(0, 0, 0);
        let plan = scale(&l, &sets, Some(1), 25);
        assert!(plan.iter().all(|&(_, n)| n == 0), "{plan:?}");
    }

    #[test]
    fn history_beyond_the_limit_is_deleted_oldest_revision_first() {
        let with_revision = |name: &str, rev: i64, spec: i32| {
            let mut set = rs(name, rev, spec, spec);
            set.metadata.annotations =
                Some([(super::super::util::REVISION.to_string(), rev.to_string())].into());
            set
        };
        let sets = vec![
            with_revision("r3", 3, 0),
            with_revision("r1", 1, 0),
            with_revision("r2", 2, 1),
            with_revision("r4", 4, 0),
            with_revision("r5", 5, 2),
        ];
        let old = [0, 1, 2, 3];
        // Limit 1: three to delete, but r2 still has a replica.
        assert_eq!(history_to_delete(Some(1), &sets, &old), vec![1, 0]);
        assert!(history_to_delete(Some(10), &sets, &old).is_empty());
        assert!(history_to_delete(None, &sets, &old).is_empty());
        assert_eq!(history_to_delete(Some(0), &sets, &old), vec![1, 0, 3]);
    }

    /// A rolling update played to the end against a fake ReplicaSet controller whose pods
    /// become available one step after they are wanted: the pod count never exceeds
    /// `replicas + maxSurge`, availability never drops under `replicas - maxUnavailable`.
    #[test]
    fn rolling_update_respects_its_bounds() {
        for (replicas, surge, unavailable) in
            [(10, 3, 2), (5, 1, 0), (3, 0, 1), (4, 2, 2), (1, 1, 0)]
        {
            let l = limits(replicas, surge, unavailable);
            let mut old = rs("old", 0, replicas, replicas);
            let mut new = rs("new", 1, 0, 0);
            for step in 0..100 {
                // The controller: grow the new RS, else shrink the old one.
                let total = spec_replicas(&old) + spec_replicas(&new);
                let grow = new_rs_new_replicas(&l, total, spec_replicas(&new));
                if grow != spec_replicas(&new) {
                    new = rs("new", 1, grow, available_replicas(&new));
                } else if let Some(&(_, size)) = scale_down_old(&l, &[&old], &new).first() {
                    old = rs("old", 0, size, available_replicas(&old).min(size));
                }
                let pods = spec_replicas(&old) + spec_replicas(&new);
                let available = available_replicas(&old) + available_replicas(&new);
                assert!(pods <= replicas + surge, "{l:?} step {step}: {pods} pods");
                assert!(
                    available >= replicas - unavailable,
                    "{l:?} step {step}: {available} available"
                );
                // The ReplicaSet controller: wanted pods become available.
                new = rs("new", 1, spec_replicas(&new), spec_replicas(&new));
                if spec_replicas(&new) == replicas && spec_replicas(&old) == 0 {
                    break;
                }
            }
            assert_eq!(
                (spec_replicas(&old), spec_replicas(&new)),
                (0, replicas),
                "{l:?}"
            );
        }
    }
}
