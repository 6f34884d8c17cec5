"""Jobs seen from the page: a reloaded tab finds its job again (running or done), and an extraction asked for in the
side panel shows its progress and Cancel at the top, where it was asked for."""

from apppage import finish_job, new_app, no_problem, texts, wait_for_file


def reloaded(at):
    """The same page opened again at its address (a reload: a new session with the same query string)."""
    again = new_app()
    again.query_params.update({k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()})
    again.run()
    return again


def test_a_reloaded_tab_finds_its_run_running_then_its_result(sample_vs, paused_app_jobs):
    at = new_app()
    at.run()
    at.number_input(key="stride").set_value(8)
    at.button(key="run").click().run()
    job = at.session_state["job"]
    wait_for_file(paused_app_jobs)
    assert at.query_params.get("job") in (job.id, [job.id])
    # Reloaded while it runs: not "Ready" on defaults, but the run, its progress bar, Cancel and the settings locked.
    tab = reloaded(at)
    no_problem(tab)
    assert tab.session_state["job"] is job
    running = [t for t in texts(tab) if t.startswith("**Running**:")]
    assert len(running) == 1 and "stride 8" in running[0] and "This tab was reloaded meanwhile" in running[0]
    assert tab.button(key="run").disabled and not tab.button(key="cancel").disabled
    assert len(tab.get("progress")) == 1 and tab.number_input(key="stride").disabled
    paused_app_jobs.unlink()
    finish_job(tab)
    no_problem(tab)
    assert "50 frames" in tab.session_state["result"]["stats"] and len(tab.get("video")) == 1
    # Reloaded once it is done: its result is offered again.
    late = reloaded(tab)
    no_problem(late)
    assert late.session_state["result"]["stats"] == tab.session_state["result"]["stats"] and len(late.get("video")) == 1
    # An address naming no job kept (or a made-up one): the page as usual.
    at2 = new_app()
    at2.query_params["job"] = "no-such-job"
    at2.run()
    no_problem(at2)
    assert any(t.startswith("**Ready**:") for t in texts(at2))


def test_an_extraction_from_the_side_panel_shows_its_progress_and_cancel_at_the_top(sample_vs, paused_app_jobs):
    at = new_app()
    at.run()
    at.button(key="extract_center").click().run()
    wait_for_file(paused_app_jobs)
    at.run()
    no_problem(at)
    # At the top, under Run (the first progress bar and the first Cancel of the page), not under 'Add a target'.
    running = [t for t in texts(at) if t.startswith("**Running**:")]
    assert running and "under 'Add a target'" not in running[0]
    box = [e for e in at.expander if e.label.startswith("Add a target")][0]
    assert not box.get("progress") and len(at.get("progress")) == 1
    assert at.button(key="cancel").label == "Cancel"
    at.button(key="cancel").click().run()
    paused_app_jobs.unlink()
    job = finish_job(at)
    assert job.cancelled and job.origin == "framing"
