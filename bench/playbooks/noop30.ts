import {definePlaybook} from '../../src/index.ts';

export default definePlaybook({name: 'bench30', plays: [{name: 'bench 30 tasks', hosts: 'all', roles: ['bench30']}]});
