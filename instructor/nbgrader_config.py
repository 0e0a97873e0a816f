"""nbgrader configuration for the workbook's course directory (instructor/).

source/<notebook>/<notebook>.ipynb  the instructor notebooks: solutions and hidden tests (the one place
                                    notebook content is written)
release/                            what `nbgrader generate_assignment` writes (not committed; make release
                                    copies it into notebooks/)
"""

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.course_id = "training-neural-networks-2"
c.CourseDirectory.root = __file__.rsplit("/", 1)[0]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Student notebooks start without outputs; the instructor sources keep theirs for nbval.
c.ClearOutput.enabled = True
c.GenerateAssignment.create_assignment = True
# nbgrader releases the notebooks (and collects them through its exchange on a JupyterHub). It does not grade
# them: its autograde runs the learner's notebook and the tests in one kernel, where the learner's code can change
# the verdict. instructor/grade.py judges each exercise's cell in a sandbox instead (see the README).
