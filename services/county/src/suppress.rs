//! Complementary suppression. Withholding a small count ("<5") protects nothing if the
//! same table also shows a total and the other parts of it: total minus the shown parts
//! is the withheld count. So for every group of cells that adds up to a shown figure
//! (schools to the county or to a filtered part of it, classes to their grade, grades to
//! their school, leave outcomes to the school's leave requests, days to a period) the
//! number of withheld cells among the total and its parts must be zero or at least two.
//! Where it is one, the smallest other part that is not zero is withheld too (shown as
//! "*"), and this is repeated over every group until nothing changes.

/// A figure that is the sum of others: cell `total` = Σ cells `parts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub total: usize,
    pub parts: Vec<usize>,
}

/// Completes `hidden` (one flag per cell, the small counts already set) so that no group
/// has exactly one hidden cell. `sizes` are the pupil counts behind the cells: the
/// smallest non-zero part is hidden first (it costs the reader least); a zero part only
/// when no other is left, and the total only when every part is already hidden. Returns
/// the cells it hid, in the order it hid them.
pub fn complete(sizes: &[f64], hidden: &mut [bool], groups: &[Group]) -> Vec<usize> {
    let mut added = Vec::new();
    loop {
        let mut changed = false;
        for g in groups {
            let cells = || std::iter::once(g.total).chain(g.parts.iter().copied());
            if cells().filter(|&c| hidden[c]).count() != 1 {
                continue;
            }
            let size = |c: usize| sizes.get(c).copied().unwrap_or(0.0);
            let open = || g.parts.iter().copied().filter(|&c| !hidden[c]);
            let pick = open()
                .filter(|&c| size(c) > 0.0)
                .min_by(|&a, &b| size(a).total_cmp(&size(b)).then(a.cmp(&b)))
                .or_else(|| open().next())
                .or((!hidden[g.total]).then_some(g.total));
            if let Some(c) = pick {
                hidden[c] = true;
                added.push(c);
                changed = true;
            }
        }
        if !changed {
            return added;
        }
    }
}

/// Whether every group is safe: zero or at least two hidden cells.
pub fn is_safe(hidden: &[bool], groups: &[Group]) -> bool {
    groups.iter().all(|g| {
        std::iter::once(g.total)
            .chain(g.parts.iter().copied())
            .filter(|&c| hidden[c])
            .count()
            != 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(total: usize, parts: &[usize]) -> Group {
        Group {
            total,
            parts: parts.to_vec(),
        }
    }

    #[test]
    fn one_small_part_takes_the_next_smallest_with_it() {
        // Parts 3, 40, 41 of a total of 84: the 3 is withheld, so is the 40.
        let sizes = [84.0, 3.0, 40.0, 41.0];
        let mut hidden = [false, true, false, false];
        let groups = [g(0, &[1, 2, 3])];
        assert_eq!(complete(&sizes, &mut hidden, &groups), vec![2]);
        assert_eq!(hidden, [false, true, true, false]);
        assert!(is_safe(&hidden, &groups));
    }

    #[test]
    fn nothing_changes_without_hidden_cells_or_with_two() {
        let sizes = [10.0, 3.0, 4.0, 3.0];
        let mut hidden = [true, true, true, false];
        // The total itself is small: 3 withheld cells, fine (the 3 shown equals nothing).
        assert!(complete(&sizes, &mut hidden, &[g(0, &[1, 2, 3])]).is_empty());
        let mut none = [false; 4];
        assert!(complete(&sizes, &mut none, &[g(0, &[1, 2, 3])]).is_empty());
    }

    #[test]
    fn zeros_are_passed_over_while_a_counted_part_is_left() {
        let sizes = [43.0, 3.0, 0.0, 40.0];
        let mut hidden = [false, true, false, false];
        complete(&sizes, &mut hidden, &[g(0, &[1, 2, 3])]);
        assert_eq!(hidden, [false, true, false, true]);
        // Only zeros left: a zero is withheld (shown as "*", which says nothing about it).
        let sizes = [3.0, 3.0, 0.0];
        let mut hidden = [false, true, false];
        complete(&sizes, &mut hidden, &[g(0, &[1, 2])]);
        assert_eq!(hidden, [false, true, true]);
    }

    #[test]
    fn a_total_with_one_part_goes_with_it_and_changes_spread_through_the_tree() {
        // County 0 = schools 1 + 2; school 1 = grades 3 + 4; school 2 = grade 5 (its only
        // one); grade 3 = classes 6 + 7.
        let sizes = [120.0, 60.0, 60.0, 30.0, 30.0, 60.0, 2.0, 28.0];
        let mut hidden = [false; 8];
        hidden[6] = true;
        let groups = [g(0, &[1, 2]), g(1, &[3, 4]), g(2, &[5]), g(3, &[6, 7])];
        complete(&sizes, &mut hidden, &groups);
        assert!(is_safe(&hidden, &groups));
        // Class 7 goes with class 6; grade 3 is then safe, and the school's groups too.
        assert_eq!(
            hidden,
            [false, false, false, false, false, false, true, true]
        );

        // A school withheld as a complement takes its only grade with it.
        let mut hidden = [false, true, true, false, false, false, false, false];
        complete(&sizes, &mut hidden, &groups);
        assert!(hidden[5], "school 2's only grade equals it");
        assert!(hidden[3] || hidden[4], "school 1's grades");
        assert!(is_safe(&hidden, &groups));
    }

    #[test]
    fn overlapping_groups_settle_with_every_group_safe() {
        // A 3x3 table with row totals 9..11, column totals 12..14 and a grand total 15.
        // Cells 0..9 (row-major), row totals 9..12, column totals 12..15, grand total 15.
        let sizes = [
            3.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 53.0, 150.0, 240.0, 113.0, 150.0,
            180.0, 443.0,
        ];
        let groups = [
            g(9, &[0, 1, 2]),
            g(10, &[3, 4, 5]),
            g(11, &[6, 7, 8]),
            g(12, &[0, 3, 6]),
            g(13, &[1, 4, 7]),
            g(14, &[2, 5, 8]),
            g(15, &[9, 10, 11]),
            g(15, &[12, 13, 14]),
        ];
        let mut hidden = [false; 16];
        hidden[0] = true;
        complete(&sizes, &mut hidden, &groups);
        assert!(is_safe(&hidden, &groups), "{hidden:?}");
        assert!(!hidden[15], "the grand total stays");
    }
}
