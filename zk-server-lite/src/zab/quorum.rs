//! Majority quorums (Apache's `QuorumMaj`): a set of voters is a quorum when it holds more
//! than half of them. Observers never count.

use std::collections::BTreeSet;

use super::Sid;

/// The voting members of an ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voters {
    voters: BTreeSet<Sid>,
}

impl Voters {
    /// The voters with these ids.
    pub fn new(voters: impl IntoIterator<Item = Sid>) -> Voters {
        Voters {
            voters: voters.into_iter().collect(),
        }
    }

    /// Whether `sid` votes.
    pub fn contains(&self, sid: Sid) -> bool {
        self.voters.contains(&sid)
    }

    /// The voters, in order.
    pub fn iter(&self) -> impl Iterator<Item = Sid> + '_ {
        self.voters.iter().copied()
    }

    /// How many voters there are.
    pub fn len(&self) -> usize {
        self.voters.len()
    }

    /// Whether there are no voters (never a valid ensemble).
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    /// Whether the voters among `members` form a majority.
    pub fn is_quorum<'a>(&self, members: impl IntoIterator<Item = &'a Sid>) -> bool {
        let votes = members
            .into_iter()
            .filter(|sid| self.voters.contains(sid))
            .collect::<BTreeSet<_>>()
            .len();
        votes > self.voters.len() / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities() {
        let v = Voters::new([1, 2, 3]);
        assert!(!v.is_quorum(&[1]));
        assert!(v.is_quorum(&[1, 3]));
        assert!(!v.is_quorum(&[1, 1]), "duplicates count once");
        assert!(!v.is_quorum(&[1, 9]), "non-voters never count");
        let five = Voters::new(1..=5);
        assert!(!five.is_quorum(&[1, 2]));
        assert!(five.is_quorum(&[1, 2, 5]));
        let four = Voters::new(1..=4);
        assert!(!four.is_quorum(&[1, 2]), "half is not a majority");
        assert!(four.is_quorum(&[1, 2, 3]));
    }
}
