// MongoDB users of the Meteoflow services, each with one role on the pipeline's database only:
//   meteoflow_app     readWrite  (the streaming job: observations, stats, forecasts)
//   meteoflow_webapp  read       (the web app)
// The root user (MONGO_ROOT_*) serves nobody but this script. compose.yaml mounts it into the
// mongo image's /docker-entrypoint-initdb.d/, which runs it with mongosh, as root, on the
// first start of an empty mongo-data volume. It is idempotent (existing users get their
// password and role again), so on an older volume run it by hand (docs/docker.md).
const database = process.env.METEOFLOW_MONGO_DB || "meteoflow";
const admin = db.getSiblingDB("admin");

function ensureUser(user, passwordVariable, role) {
  const pwd = process.env[passwordVariable];
  if (!pwd) {
    throw new Error(`mongo-init: ${passwordVariable} is not set (see .env.example)`);
  }
  const roles = [{ role: role, db: database }];
  if (admin.getUser(user)) {
    admin.updateUser(user, { pwd: pwd, roles: roles });
  } else {
    admin.createUser({ user: user, pwd: pwd, roles: roles });
  }
  print(`mongo-init: user ${user} (${role} on ${database}) ready`);
}

ensureUser("meteoflow_app", "MONGO_APP_PASSWORD", "readWrite");
ensureUser("meteoflow_webapp", "MONGO_WEBAPP_PASSWORD", "read");
