"""Expert usage, top-1 share and routing entropy on crafted routing."""

import math

import numpy as np
import pytest

from moe_dopamine.metrics import experts


def test_statistics_split_by_task_show_specialization():
  probs = np.array([
      [[0.9, 0.1]],  # task 0
      [[0.7, 0.3]],  # task 0
      [[0.2, 0.8]],  # task 1
  ])
  stats = experts.expert_statistics({'big': probs}, [0, 0, 1], ['CartPole', 'MountainCar'])
  np.testing.assert_allclose(stats['expert_usage_CartPole/big'], [0.8, 0.2])
  np.testing.assert_allclose(stats['expert_top1_CartPole/big'], [1.0, 0.0])
  np.testing.assert_allclose(stats['expert_usage_MountainCar/big'], [0.2, 0.8])
  np.testing.assert_allclose(stats['expert_top1_MountainCar/big'], [0.0, 1.0])
  expected = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))
  assert stats['routing_entropy_MountainCar/big'] == pytest.approx(expected)


def test_entropy_bounds():
  assert experts.routing_entropy(np.eye(3)) == pytest.approx(0.0, abs=1e-9)
  assert experts.routing_entropy(np.full((2, 4), 0.25)) == pytest.approx(math.log(4))


def test_absent_tasks_get_no_keys():
  stats = experts.expert_statistics({'l': np.ones((2, 1, 2)) / 2}, [1, 1], ['A', 'B'])
  assert not any('_A/' in k for k in stats)


def test_specialization_is_one_for_one_expert_per_task_and_zero_when_shared():
  # Fails for an NMI that ignores the task (usage pooled) or is unnormalized.
  assert experts.specialization([[1, 0, 0, 0], [0, 0, 1, 0]]) == pytest.approx(1.0)
  assert experts.specialization([[0, 1, 0, 0], [0, 1, 0, 0]]) == pytest.approx(0.0)
  assert experts.specialization([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]]) == pytest.approx(0.0)
  # Hand-worked: tasks A -> e0, B -> e0 or e1 evenly. p(t,e) = [[.5,0],[.25,.25]];
  # H(T) = ln 2, H(E) = H(.75,.25), H(T,E) = H(.5,.25,.25).
  h = lambda *p: -sum(x * np.log(x) for x in p)
  mutual = h(0.5, 0.5) + h(0.75, 0.25) - h(0.5, 0.25, 0.25)
  expected = mutual / ((h(0.5, 0.5) + h(0.75, 0.25)) / 2)
  assert experts.specialization([[1, 0], [0.5, 0.5]]) == pytest.approx(expected)
  # The labels do not matter: permuting experts gives the same value.
  assert experts.specialization([[0, 1], [0.5, 0.5]]) == pytest.approx(expected)
  assert np.isnan(experts.specialization([[0.2, 0.8]]))


def test_busiest_share_weights_tasks_equally():
  assert experts.busiest_share([[1, 0, 0, 0], [0, 0, 1, 0]]) == pytest.approx(0.5)
  assert experts.busiest_share([[1, 0], [1, 0]]) == pytest.approx(1.0)
  assert experts.busiest_share([[0.9, 0.1], [0.3, 0.7]]) == pytest.approx(0.6)


def test_align_undoes_each_runs_permutation_of_its_experts():
  # Every run has the same two-task pattern with its experts relabelled:
  # matched, the runs coincide; averaged unmatched, the pattern blurs.
  pattern = np.array([[0.7, 0.2, 0.1, 0.0],
                      [0.0, 0.1, 0.3, 0.6]])
  rng = np.random.default_rng(0)
  orders = [rng.permutation(4) for _ in range(6)]
  runs = np.stack([pattern[:, order] for order in orders])
  aligned, permutations = experts.align(runs)
  for r in range(len(runs)):
    np.testing.assert_array_equal(aligned[r], runs[r][:, permutations[r]])
    np.testing.assert_allclose(aligned[r], aligned[0])
  # The matched mean keeps every cell of the pattern (up to one relabelling).
  np.testing.assert_allclose(sorted(aligned.mean(axis=0)[0]), sorted(pattern[0]))
  assert runs.mean(axis=0).max() < 0.7


def test_align_matches_noisy_runs_to_their_closest_columns():
  pattern = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]])
  noisy = pattern + np.array([[-0.05, 0.05, 0.0], [0.0, -0.05, 0.05]])
  runs = np.stack([pattern, noisy[:, [2, 0, 1]], noisy[:, [1, 2, 0]]])
  aligned, permutations = experts.align(runs)
  assert permutations[0].tolist() == [0, 1, 2]
  assert permutations[1].tolist() == [1, 2, 0] and permutations[2].tolist() == [2, 0, 1]
  np.testing.assert_allclose(aligned[1], noisy)
  with pytest.raises(ValueError, match='runs, tasks, experts'):
    experts.align(np.zeros((2, 3)))
  with pytest.raises(ValueError, match='max_rounds'):
    experts.align(np.zeros((2, 2, 3)), max_rounds=0)
