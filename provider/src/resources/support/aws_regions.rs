//! AWS region names, by partition: a typo such as `us-eats-1` is an error at plan time, a
//! well-formed name this table does not know yet (a region newer than the provider) only a
//! warning.
//!
//! The regions and each partition's region pattern are AWS's own: the partition data AWS
//! publishes with its SDKs (`partitions.json`, whose `regionRegex` is e.g.
//! `^us\-gov\-\w+\-\d+$`), and for the commercial regions the list in "AWS Region billing
//! codes" (https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-region-billing-codes.html).
//! AWS's patterns accept any word where the direction goes, so `us-eats-1` would pass them;
//! ours accept only the direction words region names use.
use tfplugin::diag::{AttrPath, Diagnostics};

/// A partition: the areas its region names start with, and the regions it has today.
struct Partition {
    id: &'static str,
    /// What comes before the direction: `us` in `us-east-1`, `us-gov` in `us-gov-west-1`.
    areas: &'static [&'static str],
    regions: &'static [&'static str],
}

const PARTITIONS: &[Partition] = &[
    Partition {
        id: "aws",
        areas: &["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"],
        regions: &[
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "me-west-1",
            "mx-central-1",
            "sa-east-1",
            "sa-west-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
    },
    Partition {
        id: "aws-cn",
        areas: &["cn"],
        regions: &["cn-north-1", "cn-northwest-1"],
    },
    Partition {
        id: "aws-us-gov",
        areas: &["us-gov"],
        regions: &["us-gov-east-1", "us-gov-west-1"],
    },
    Partition {
        id: "aws-iso",
        areas: &["us-iso"],
        regions: &["us-iso-east-1", "us-iso-west-1"],
    },
    Partition {
        id: "aws-iso-b",
        areas: &["us-isob"],
        regions: &["us-isob-east-1", "us-isob-west-1"],
    },
    Partition {
        id: "aws-iso-e",
        areas: &["eu-isoe"],
        regions: &["eu-isoe-west-1"],
    },
    Partition {
        id: "aws-iso-f",
        areas: &["us-isof"],
        regions: &["us-isof-east-1", "us-isof-south-1"],
    },
    Partition {
        id: "aws-eusc",
        areas: &["eusc-de"],
        regions: &["eusc-de-east-1"],
    },
];

/// The direction words of region names (`cn-northwest-1`, `ap-southeast-2`, ...).
const DIRECTIONS: &[&str] = &[
    "east",
    "west",
    "north",
    "south",
    "central",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
];

/// What a region name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionCheck {
    Known,
    /// Shaped like a region of `partition`, but not one this provider knows.
    Unlisted {
        partition: &'static str,
        closest: &'static str,
    },
    /// Shaped like no partition's regions; `reason` says which part is wrong.
    Malformed {
        reason: String,
        closest: &'static str,
    },
}

/// Classifies a region name.
pub fn check_region(name: &str) -> RegionCheck {
    if PARTITIONS.iter().any(|p| p.regions.contains(&name)) {
        return RegionCheck::Known;
    }
    let closest = closest_region(name);
    match partition_of(name) {
        Ok(partition) => RegionCheck::Unlisted { partition, closest },
        Err(reason) => RegionCheck::Malformed { reason, closest },
    }
}

/// The partition whose pattern `<area>-<direction>-<number>` the name matches, or why none.
fn partition_of(name: &str) -> Result<&'static str, String> {
    let shape = "region names are <area>-<direction>-<number>, such as us-east-1, us-gov-west-1 or cn-north-1";
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("it has uppercase letters; region names are lowercase".to_string());
    }
    let Some((rest, number)) = name.rsplit_once('-') else {
        return Err(format!("it has no dashes; {shape}"));
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("it does not end in a number; {shape}"));
    }
    let Some((area, direction)) = rest.rsplit_once('-') else {
        return Err(format!("it has no direction; {shape}"));
    };
    if !DIRECTIONS.contains(&direction) {
        return Err(format!(
            "{direction:?} is not a direction region names use ({})",
            DIRECTIONS.join(", ")
        ));
    }
    PARTITIONS
        .iter()
        .find(|p| p.areas.contains(&area))
        .map(|p| p.id)
        .ok_or_else(|| {
            let areas: Vec<&str> = PARTITIONS.iter().flat_map(|p| p.areas).copied().collect();
            format!(
                "{area:?} is not an area of any AWS partition ({})",
                areas.join(", ")
            )
        })
}

/// The known region nearest to `name` by edit distance, ignoring case (the first of equals,
/// in table order).
fn closest_region(name: &str) -> &'static str {
    PARTITIONS
        .iter()
        .flat_map(|p| p.regions)
        .copied()
        .min_by_key(|r| edit_distance(&name.to_ascii_lowercase(), r))
        .unwrap_or("us-east-1")
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Reports a region setting: an error for a malformed name, a warning for an unknown one.
/// `what` names the setting in the message, e.g. "`aws.region`".
pub fn diagnose(name: &str, path: &AttrPath, what: &str, diags: &mut Diagnostics) {
    match check_region(name) {
        RegionCheck::Known => {}
        RegionCheck::Unlisted { partition, closest } => diags.attr_warning(
            path.clone(),
            "Unknown AWS region",
            format!(
                "{what} = {name:?} has the shape of a region of the {partition} partition, but it is not a region this provider knows. New regions appear: if {name:?} is one, ignore this warning. If it is a typo, the closest known region is {closest:?}."
            ),
        ),
        RegionCheck::Malformed { reason, closest } => diags.attr_error(
            path.clone(),
            "Malformed AWS region",
            format!(
                "{what} = {name:?} is not an AWS region name: {reason}. The closest known region is {closest:?}; set the region the integration lives in."
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_region_matches_its_partition_pattern() {
        for p in PARTITIONS {
            for r in p.regions {
                assert_eq!(partition_of(r), Ok(p.id), "{r}");
                assert_eq!(check_region(r), RegionCheck::Known);
            }
        }
    }

    #[test]
    fn a_well_formed_unknown_region_is_unlisted_with_its_partition() {
        assert_eq!(
            check_region("ap-southeast-9"),
            RegionCheck::Unlisted {
                partition: "aws",
                closest: "ap-southeast-1"
            }
        );
        assert!(matches!(
            check_region("us-gov-central-1"),
            RegionCheck::Unlisted {
                partition: "aws-us-gov",
                ..
            }
        ));
        assert!(matches!(
            check_region("cn-south-1"),
            RegionCheck::Unlisted {
                partition: "aws-cn",
                ..
            }
        ));
        assert!(matches!(
            check_region("us-isof-west-1"),
            RegionCheck::Unlisted {
                partition: "aws-iso-f",
                ..
            }
        ));
    }

    #[test]
    fn a_typo_is_malformed_and_names_the_closest_region() {
        let RegionCheck::Malformed { reason, closest } = check_region("us-eats-1") else {
            panic!("us-eats-1 accepted");
        };
        assert!(reason.contains("\"eats\" is not a direction"), "{reason}");
        assert_eq!(closest, "us-east-1");
        for (name, needle, near) in [
            ("useast1", "no dashes", "us-east-1"),
            ("us-east", "does not end in a number", "us-east-1"),
            ("east-1", "no direction", "ap-east-1"),
            ("uk-west-1", "\"uk\" is not an area", "us-west-1"),
            (
                "eu-centrl-1",
                "\"centrl\" is not a direction",
                "eu-central-1",
            ),
            ("US-EAST-1", "region names are lowercase", "us-east-1"),
        ] {
            match check_region(name) {
                RegionCheck::Malformed { reason, closest } => {
                    assert!(reason.contains(needle), "{name}: {reason}");
                    assert_eq!(closest, near, "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("us-east-1", "us-east-1"), 0);
        assert_eq!(edit_distance("us-eats-1", "us-east-1"), 2);
        assert_eq!(edit_distance("us-east-1", "us-east-12"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn diagnose_is_an_error_for_a_typo_and_a_warning_for_a_new_region() {
        let path = AttrPath::root("aws").attr("region");
        let mut d = Diagnostics::default();
        diagnose("us-eats-1", &path, "`aws.region`", &mut d);
        diagnose("eu-north-2", &path, "`aws.region`", &mut d);
        diagnose("eu-west-1", &path, "`aws.region`", &mut d);
        let [typo, new] = d.0.as_slice() else {
            panic!("{d:?}")
        };
        use tfplugin::diag::Severity;
        assert_eq!(typo.severity, Severity::Error);
        assert_eq!(typo.path.as_ref(), Some(&path));
        assert!(typo.detail.contains("`aws.region` = \"us-eats-1\""));
        assert!(typo
            .detail
            .contains("closest known region is \"us-east-1\""));
        assert_eq!(new.severity, Severity::Warning);
        assert!(new.detail.contains("not a region this provider knows"));
        assert!(new.detail.contains("New regions appear"));
        assert!(new.detail.contains("If it is a typo"));
    }
}
