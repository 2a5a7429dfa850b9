"""The seed's examples and exercises as runnable FastAPI apps.

Examples: ``python -m millstream.dualmode.examples.<name> [--host H] [--port P]`` with
``basic_streaming`` (1), ``mode_detection`` (2), ``llm_streaming`` (3), ``backpressure`` (4).

Exercises: ``exercise_1_weather``, ``exercise_2_progress``, ``exercise_3_completions`` state a
task in their docstring; ``python -m millstream.dualmode.examples.<exercise> URL`` checks the
server at URL against it. Their solutions run like the examples:
``python -m millstream.dualmode.examples.solutions.<exercise>``.
"""
