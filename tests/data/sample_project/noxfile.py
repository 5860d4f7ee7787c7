import os

import nox


@nox.session(python=["3.11", "3.13"])
def tests(session):
    session.run("python", "-m", "unittest", "discover", "-s", "tests", "-v",
                env={"SAMPLE_EXPECT_ROOT": os.environ["SAMPLE_EXPECT_ROOT"]})
