import './styles.scss';
import { Shell } from './app';

const root = document.getElementById('app');
if (root) void new Shell(root).start();
