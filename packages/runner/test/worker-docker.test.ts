import { docker } from '@statebox/docker';
import { DEBIAN_IMAGE, dockerSkipReason } from '@statebox/docker/testing';
import { describeLifecycle } from './fixtures/lifecycle.js';

// The toolset needs bash and GNU tools in the sandbox, so this runs on the Debian image that
// .ci/docker.sh builds (packages/docker/scripts/build-debian-image.sh).
describeLifecycle({
  name: 'docker',
  suite: 'runner on the docker provider',
  test: 'serves a session on Docker: suspends when idle, resumes with the shell, forks a branch',
  skipReason: await dockerSkipReason({ image: DEBIAN_IMAGE }),
  open: async () => {
    const provider = docker({ image: DEBIAN_IMAGE });
    return { provider, close: () => provider.close() };
  },
});
