"""torch_step.py: the timing loop shared by torch_train.py and torch_infogan.py, the same as
bench_train's: 3 untimed warm-up steps, then `steps` timed ones; prints one line of JSON, the
fields of `head` followed by ms_per_step (the mean), best_ms, images_per_s (batch / mean) and
peak_rss_mb (peak resident memory of the process)."""
import json, resource, time


def time_steps(step, steps, batch, head):
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    mean = sum(times) / len(times)
    print(json.dumps(dict(head, ms_per_step=round(mean * 1e3, 2), best_ms=round(min(times) * 1e3, 2),
                          images_per_s=round(batch / mean, 1),
                          peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))))
